"""Whole-body detector boxes and the people the landmarks found: which box shows whom, people
known only by a box (box-only), and box-only people carried from frame to frame. The rules are
in README.md ("How the keypoints are found"). ROS-free."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .layouts import get_layout
from .person_detector import covered_fraction
from .ssd import Detection, box_iou
from .types import FOUND_BY_BOX, Keypoints, Person, RotatedRect


def box_only_person(det: Detection, layout: str = "blazepose33") -> Person:
    """A person known only by a whole-body detector box: every keypoint invalid (NaN, score
    0); the box and the detector's score stand for the person."""
    n = get_layout(layout).size
    kp = Keypoints(layout, np.full((n, 2), np.nan, np.float32), np.zeros(n, np.float32))
    return Person(body=kp, box=np.asarray(det.box, np.float32).copy(), score=float(det.score),
                  detector_score=float(det.score), found_by=FOUND_BY_BOX)


def nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """``inner`` lies 80 % inside ``outer``, their centres within a quarter of ``outer``'s
    width, and ``inner`` is at least 30 % as tall."""
    w, h = outer[2] - outer[0], outer[3] - outer[1]
    return bool(covered_fraction(inner, outer[None])[0] >= 0.8
                and abs((inner[0] + inner[2]) - (outer[0] + outer[2])) / 2.0 <= 0.25 * w
                and inner[3] - inner[1] >= 0.3 * h)


def boxes_agree(a: np.ndarray, b: np.ndarray, min_iou: float) -> bool:
    """Two boxes of one person: IoU >= ``min_iou`` or one nested in the other."""
    return bool(box_iou(a, b[None])[0] >= min_iou or nested(a, b) or nested(b, a))


def box_owner(box: np.ndarray, boxes: np.ndarray, min_iou: float
              ) -> Tuple[Optional[int], bool]:
    """``(index of the person whose landmarks' box (one of (N, 4) ``boxes``) a whole-body
    detector box shows, or None; whether the detector's box covers that person)``. The box
    shows a person when IoU of the boxes >= ``min_iou``; when the person's box lies inside the
    detector's, centred alike (the landmarks' box misses clothes, hair, turned-away parts): the
    box covers the person; when the detector's box lies inside the person's, centred alike (a
    detector box cut by something in front of the person, or of a part of someone lying): it
    shows the person but does not cover them."""
    if not len(boxes):
        return None, False
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    iou = box_iou(box, boxes)
    k = int(np.argmax(iou))
    if iou[k] >= min_iou:
        return k, True
    for k in np.argsort(-iou):
        if nested(boxes[k], box):
            return int(k), True
    for k in np.argsort(-iou):
        pb = boxes[k]
        if nested(box, pb):
            return int(k), False
    return None, False


def covers_most(det_box: np.ndarray, lm_box: np.ndarray, fraction: float = 0.8) -> bool:
    """The detector's box holds at least ``fraction`` of the landmarks' box."""
    return bool(covered_fraction(np.asarray(lm_box, np.float32),
                                 np.asarray(det_box, np.float32)[None])[0] >= fraction)


def take_box(person: Person, lm_box: np.ndarray, det_box: np.ndarray) -> np.ndarray:
    """The whole-body detector's box becomes the person's box (it covers the visible person;
    the landmarks' box ``lm_box`` misses clothes and hair); returns the offset from the
    landmarks' box (x0, y0, x1, y1, in units of its height) to carry to the next frames
    (:func:`apply_box_margin`)."""
    lm = np.asarray(lm_box, np.float64)
    person.box = np.asarray(det_box, np.float32).copy()
    return (np.asarray(det_box, np.float64) - lm) / max(lm[3] - lm[1], 1.0)


def apply_box_margin(person: Person, margin: np.ndarray, w: int, h: int) -> None:
    """A person without a detector box this frame keeps the offset the last one had from their
    landmarks' box (``take_box``), clipped to the image."""
    lm = person.box.astype(np.float64)
    b = lm + margin * max(lm[3] - lm[1], 1.0)
    b[[0, 2]] = np.clip(b[[0, 2]], 0, w - 1)
    b[[1, 3]] = np.clip(b[[1, 3]], 0, h - 1)
    person.box = b.astype(np.float32)


@dataclass
class BoxTrack:
    """A box-only person carried to the next frame."""

    box: np.ndarray
    score: float
    age: int = 0          # frames held without being seen again (:func:`held_box_only`)
    # the face box of the BlazePose detection that found the person, for one found through a
    # face (``face_box_only``): held by :func:`held_face_box_only`, not :func:`held_box_only`
    face: Optional[np.ndarray] = None


def continues_box_only(box: np.ndarray, tracks: Sequence[BoxTrack]) -> bool:
    """The box shows one of last frame's box-only people (IoU >= 0.5)."""
    return bool(tracks) and box_iou(box, np.stack([t.box for t in tracks])).max() >= 0.5


def held_box_only(tracks: Sequence[BoxTrack], scanned_tiles: Sequence[RotatedRect],
                  max_age: int, shown: Sequence[Person]) -> List[Tuple[Person, int]]:
    """Last frame's box-only people that nobody shown this frame overlaps (IoU >= 0.3) and whose
    box centre lies in no tile scanned this frame (people too small for the whole-image pass
    wait for their tile's turn): kept with their last box, for at most ``max_age`` frames.
    Returns (person, frames held)."""
    shown_boxes = np.stack([p.box for p in shown]) if shown else np.zeros((0, 4))
    held = []
    for t in tracks:
        if t.face is not None:
            continue                          # found through a face: held_face_box_only
        if t.age + 1 > max_age:
            continue
        if len(shown_boxes) and box_iou(t.box, shown_boxes).max() >= 0.3:
            continue
        cx, cy = (t.box[0] + t.box[2]) / 2.0, (t.box[1] + t.box[3]) / 2.0
        if any(abs(cx - r.cx) <= r.width / 2 and abs(cy - r.cy) <= r.height / 2
               for r in scanned_tiles):
            continue                          # its tile ran and did not find it
        held.append((box_only_person(Detection(t.box, t.score, np.zeros((0, 2), np.float32))),
                     t.age + 1))
    return held


def held_face_box_only(tracks: Sequence[BoxTrack], max_age: int
                       ) -> List[Tuple[Person, Detection, int]]:
    """Last frame's box-only people found through a face (``BoxTrack.face``), kept with their
    last box for at most ``max_age`` frames (until BlazePose's detector has looked for that
    face again with each of its tiles: ``KeypointPipeline._face_hold_frames``). Unlike
    :func:`held_box_only` they are kept though a shown person's box overlaps theirs (the
    partner a hidden person is behind) and though a whole-body tile scanned their place (that
    detector never found them): the pipeline drops them where someone's head lies on their
    face (``BodyStage.unclaimed_faces``) and on the detector frames that do not find the face
    again (``BodyStage.refind_faces``). Returns (person, their face as a detection, frames
    held)."""
    held = []
    for t in tracks:
        if t.face is None or t.age + 1 > max_age:
            continue
        face = Detection(np.asarray(t.face, np.float32), t.score, np.zeros((0, 2), np.float32))
        held.append((box_only_person(Detection(t.box, t.score, face.keypoints)), face,
                     t.age + 1))
    return held
