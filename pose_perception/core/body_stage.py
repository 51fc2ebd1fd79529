"""The body stage of the keypoint pipeline: BlazePose landmarks on the crops tracked from the last
frame, on new detections (face-anchored BlazePose detections, faces, whole-body boxes), with
duplicates merged; people known only by a whole-body box, or by a face-anchored detection whose
crop found no usable landmarks (``face_box_only``). ROS-free."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import body as body_mod
from . import face as face_mod
from .crops import CropSampler, rect_bounds, scaled_rect, size_ratio
from .keypoint_config import KeypointConfig
from .person_fusion import (BoxTrack, box_only_person, box_owner, boxes_agree,
                            continues_box_only, covers_most, held_box_only, take_box)
from .ssd import Detection, box_iou
from .types import Keypoints, Person, RotatedRect


@dataclass
class BodyTrack:
    """What is carried from one frame to the next for one person."""

    roi: RotatedRect                            # body crop for the next frame
    face_roi: Optional[RotatedRect] = None
    hand_rois: Dict[str, RotatedRect] = field(default_factory=dict)
    # how far the whole-body detector's box reached beyond the landmarks' box when it last saw
    # the person (x0, y0, x1, y1 offsets in units of the landmarks' box height)
    box_margin: Optional[np.ndarray] = None


# what became of a body candidate crop (``BodyStage.add_candidates``)
FOUND, DUPLICATE, ABSENT = "found", "duplicate", "absent"


class BodyStage:
    """People's body landmarks for one frame (see the module docstring)."""

    def __init__(self, landmarker: "body_mod.PoseLandmarker", config: KeypointConfig) -> None:
        self.landmarker = landmarker
        self.config = config

    def track(self, sampler: CropSampler, previous: Sequence[BodyTrack], w: int, h: int
              ) -> Tuple[List[Person], List[BodyTrack], int]:
        """Landmarks on the crops tracked from the last frame (one batch; lost ones retried on a
        wider crop). Returns the people found, their tracks and how many tracked people were
        lost."""
        cfg = self.config
        persons: List[Person] = []
        tracks: List[BodyTrack] = []
        if not previous:
            return persons, tracks, 0
        cands = list(previous)
        nan = [float("nan")] * len(cands)
        status = self.add_candidates(sampler, cands, nan, len(cands), persons, tracks, w, h)
        lost = [c for c, s in zip(cands, status) if s == ABSENT]
        if lost and cfg.lost_retry_scale > 1.0:
            retry = [BodyTrack(scaled_rect(c.roi, cfg.lost_retry_scale), c.face_roi, c.hand_rois,
                               c.box_margin) for c in lost]
            status = self.add_candidates(sampler, retry, nan[:len(retry)], len(retry), persons,
                                         tracks, w, h)
            lost = [c for c, s in zip(retry, status) if s == ABSENT]
        return persons, tracks, len(lost)

    def add_detections(self, sampler: CropSampler, dets: Sequence[Detection],
                       persons: List[Person], tracks: List[BodyTrack], w: int, h: int
                       ) -> List[Tuple[Person, Detection]]:
        """Landmarks for the detections that are none of ``persons``.

        A detection is a person already found when its box centre (the detector finds faces)
        lies in that person's head region. A person found through their head whose crop this
        frame differs in size from the detection's by more than ``reanchor_ratio`` is run again
        from the detection (``_reanchor``): crops derived from landmarks follow a change of size
        slowly (a person walking towards or away from the camera). A detection whose crop
        overlaps the next crop of a person already found by IoU > ``track_overlap_iou`` is that
        person too, unless its face lies outside every found person's head region (a different
        face: a different person, e.g. one half hidden behind another): such crops run too
        (``face_box_only``).

        Returns the box-only people (``face_box_only``) for new detections whose crop found no
        person with a usable pose flag, each with its detection."""
        cfg = self.config
        if not dets:
            return []
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        taken = [rect_bounds(p.next_roi) for p in persons if p.next_roi is not None]
        cands: List[BodyTrack] = []
        scores: List[float] = []
        new_dets: List[Detection] = []
        overlapped: List[Tuple[Detection, RotatedRect]] = []
        redo: Dict[int, Tuple[RotatedRect, float]] = {}
        for d in dets:
            roi = body_mod.roi_from_detection(d)
            if not roi.width >= cfg.min_crop_px:
                continue
            owner = next((k for k, head in enumerate(heads)
                          if face_mod.overlaps_any(d.box, [head])), None)
            if owner is not None:
                used = persons[owner].roi
                if (cfg.reanchor_ratio > 0 and used is not None and owner not in redo
                        and size_ratio(roi, used) > cfg.reanchor_ratio):
                    redo[owner] = (roi, d.score)
                continue
            b = rect_bounds(roi)
            if taken and box_iou(b, np.stack(taken)).max() > cfg.track_overlap_iou:
                overlapped.append((d, roi))
                continue
            if len(cands) + len(persons) >= cfg.max_persons:
                continue
            cands.append(BodyTrack(roi))
            scores.append(d.score)
            new_dets.append(d)
            taken.append(b)
        if redo:
            self._reanchor(sampler, redo, persons, tracks, w, h)
        lms: list = []
        status = self.add_candidates(sampler, cands, scores, 0, persons, tracks, w, h, lms)
        if not cfg.face_box_only:
            return []
        out = self._face_box_only(lms[0], status, new_dets, persons, w, h) if cands else []
        # overlapping crops whose face is in no head region, now that this frame's new people
        # are known too
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        again = [(d, roi) for d, roi in overlapped if not face_mod.overlaps_any(d.box, heads)]
        again = again[:max(0, cfg.max_persons - len(persons))]
        if again:
            lms = []
            status = self.add_candidates(sampler, [BodyTrack(r) for _, r in again],
                                         [d.score for d, _ in again], 0, persons, tracks, w, h,
                                         lms)
            more = self._face_box_only(lms[0], status, [d for d, _ in again], persons, w, h)
            out += [m for m in more
                    if not any(boxes_agree(m[0].box, q.box, cfg.person_box_match_iou)
                               for q, _ in out)]
        return out

    def _face_box_only(self, lm: "body_mod.PoseLandmarks", status: Sequence[str],
                       dets: Sequence[Detection], persons: Sequence[Person], w: int, h: int
                       ) -> List[Tuple[Person, Detection]]:
        """``face_box_only``: a face-anchored detection whose crop found nobody (pose flag below
        ``min_pose_presence``) is still a person when the landmark model, unsure as it is, puts
        that person's head on the detection's face and sees none of the ``persons`` there (a
        person half hidden behind another). Published box-only (keypoints invalid) with the
        landmarks' visible box and the detector's score."""
        cfg = self.config
        out: List[Tuple[Person, Detection]] = []
        for i, (d, st) in enumerate(zip(dets, status)):
            if st != ABSENT:
                continue
            xy = lm.xy[i]
            if not np.all(np.isfinite(xy[:body_mod.NUM_BODY])):
                continue
            seen = self._make_person(lm, i, d.score, w, h)
            if seen is None or not face_mod.overlaps_any(d.box, [face_mod.roi_from_pose(xy)]):
                continue                          # no usable crop, or a head elsewhere
            if any(body_mod.same_person(seen.body, p.body, w, h, cfg.duplicate_distance)
                   or face_mod.overlaps_any(d.box, [face_mod.roi_from_pose(p.body.xy)])
                   for p in persons):
                continue                          # someone found already
            if any(boxes_agree(seen.box, q.box, cfg.person_box_match_iou) for q, _ in out):
                continue                          # two detections of one person
            out.append((box_only_person(Detection(seen.box, d.score, d.keypoints)), d))
        return out

    def _reanchor(self, sampler: CropSampler, redo: Dict[int, Tuple[RotatedRect, float]],
                  persons: List[Person], tracks: List[BodyTrack], w: int, h: int) -> None:
        """Replace people ``k`` of ``redo`` by their landmarks from the detection's crop (refined
        once like any new crop); kept as they are where the model finds nobody there."""
        cfg = self.config
        ks = list(redo)
        lm = self._run_refined(sampler, [redo[k][0] for k in ks], 0)
        for j, k in enumerate(ks):
            if lm.flag[j] < cfg.min_pose_presence:
                continue
            made = self._make_person(lm, j, redo[k][1], w, h)
            if made is None:
                continue
            old = tracks[k]
            persons[k] = made
            tracks[k] = BodyTrack(made.next_roi, old.face_roi, old.hand_rois, old.box_margin)

    def _run_refined(self, sampler: CropSampler, rois: Sequence[RotatedRect],
                     first_new: int) -> "body_mod.PoseLandmarks":
        """Landmarks on ``rois``; those from index ``first_new`` on are new crops, run a second
        time on their landmark-derived crop when ``refine_new_crops``."""
        cfg = self.config
        lm = self.landmarker.run(sampler, rois)
        if cfg.refine_new_crops and first_new < len(rois):
            idx = [i for i in range(first_new, len(rois)) if lm.flag[i] >= cfg.min_pose_presence]
            if idx:
                again = self.landmarker.run(sampler, [body_mod.roi_from_landmarks(lm.xy[i])
                                                      for i in idx])
                for j, i in enumerate(idx):
                    if again.flag[j] >= cfg.min_pose_presence:
                        lm.replace(i, again, j)
        return lm

    def _make_person(self, lm: "body_mod.PoseLandmarks", i: int, det_score: float,
                     w: int, h: int) -> Optional[Person]:
        """Entry ``i`` of a landmark batch as a Person (None when its next crop is unusable)."""
        xy = lm.xy[i]
        nxt = body_mod.roi_from_landmarks(xy)
        if not (math.isfinite(nxt.cx) and math.isfinite(nxt.cy) and math.isfinite(nxt.width)
                and nxt.width >= self.config.min_crop_px):
            return None
        kp = Keypoints("blazepose33", xy[:body_mod.NUM_BODY],
                       lm.visibility[i, :body_mod.NUM_BODY])
        return Person(body=kp, box=body_mod.visible_box(xy, lm.visibility[i], w, h),
                      score=float(lm.flag[i]), world=lm.world[i], roi=lm.rois[i],
                      next_roi=nxt, detector_score=det_score)

    def add_candidates(self, sampler: CropSampler, cands: List[BodyTrack], det_scores: List[float],
                       first_new: int, persons: List[Person], tracks: List[BodyTrack],
                       w: int, h: int, landmarks: Optional[list] = None) -> List[str]:
        """Run the landmark model on candidate crops and append the people found to
        ``persons``/``tracks`` (skipping duplicates of people already there, ``same_person``).
        Candidates from index ``first_new`` on are new crops (refined once when
        ``refine_new_crops``). Returns, per candidate, FOUND, DUPLICATE or ABSENT (pose flag
        too low, or an unusable crop). The landmark batch goes into ``landmarks`` when given."""
        cfg = self.config
        if not cands:
            return []
        lm = self._run_refined(sampler, [c.roi for c in cands], first_new)
        if landmarks is not None:
            landmarks.append(lm)
        status = [ABSENT] * len(cands)
        accepted: Dict[int, Tuple[Person, BodyTrack]] = {}
        room = cfg.max_persons - len(persons)
        # strongest first, so that duplicates (two crops on one person) keep the better one
        for i in sorted(range(len(cands)), key=lambda i: -float(lm.flag[i])):
            if lm.flag[i] < cfg.min_pose_presence or len(accepted) >= room:
                continue
            person = self._make_person(lm, i, det_scores[i], w, h)
            if person is None:
                continue
            if any(body_mod.same_person(person.body, p.body, w, h, cfg.duplicate_distance)
                   for p in persons + [a[0] for a in accepted.values()]):
                status[i] = DUPLICATE
                continue
            accepted[i] = (person, BodyTrack(person.next_roi, cands[i].face_roi,
                                             dict(cands[i].hand_rois), cands[i].box_margin))
            status[i] = FOUND
        for i in sorted(accepted):            # keep the candidates' (tracks') order
            persons.append(accepted[i][0])
            tracks.append(accepted[i][1])
        return status

    def seed_from_faces(self, sampler: CropSampler, faces: List[Detection],
                        persons: List[Person], tracks: List[BodyTrack], w: int, h: int
                        ) -> List[Detection]:
        """Look for a body below each detected face that no person accounts for (the person
        detector misses some people); returns the faces still without a body."""
        cfg = self.config
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        lone = [d for d in faces if not face_mod.overlaps_any(d.box, heads)]
        room = cfg.max_persons - len(persons)
        if not lone or room <= 0 or not cfg.seed_bodies_from_faces:
            return lone
        seeds = lone[:room]
        cands = [BodyTrack(body_mod.roi_from_face(d.box, d.keypoints[0], d.keypoints[1]))
                 for d in seeds]
        self.add_candidates(sampler, cands, [d.score for d in seeds], 0, persons, tracks, w, h)
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        return [d for d in lone if not face_mod.overlaps_any(d.box, heads)]

    def from_boxes(self, sampler: CropSampler, boxes: Sequence[Detection],
                   scanned_tiles: Sequence[RotatedRect], check: bool,
                   box_tracks: Sequence[BoxTrack], max_held: int, persons: List[Person],
                   tracks: List[BodyTrack], w: int, h: int,
                   face_only: Sequence[Tuple[Person, Detection]] = ()
                   ) -> Tuple[List[Person], List[int], set]:
        """Whole-body detector boxes that no person accounts for get a landmark run (crop
        around the box, refined once) while there is room (``max_persons``); those still
        without a person become box-only people (``publish_box_only``). A person a box shows
        takes the box (``person_fusion.take_box``). Weak boxes need the landmark model's
        confirmation (``_confirmed``, on detector scans: ``check``) unless they continue one of
        last frame's box-only people (``box_tracks``). Those that no box shows again and whose
        place no tile scanned this frame are held for at most ``max_held`` frames
        (``person_fusion.held_box_only``). Returns the box-only people, how many frames each
        has been held, and the indices of the people that took a box. The box-only people
        found through a face (``face_only``: from ``add_detections``, continued by
        ``refind_faces`` or held by ``person_fusion.held_face_box_only``) come first, unless
        someone found since has a head on their face; a box that agrees with one of them shows
        that person."""
        cfg = self.config
        boxed: set = set()
        lm_boxes = [p.box.copy() for p in persons]     # the landmarks' boxes, before any claim
        pending = self._claim(boxes, persons, tracks, lm_boxes, boxed)
        strong = [d for d in pending if d.score >= cfg.person_detector_min_score]
        weak = [d for d in pending if d.score < cfg.person_detector_min_score]
        tried = (strong + weak)[:max(0, cfg.max_persons - len(persons))]
        tried = [d for d in tried if body_mod.roi_from_box(d.box).width >= cfg.min_crop_px]
        if tried:
            cands = [BodyTrack(body_mod.roi_from_box(d.box)) for d in tried]
            self.add_candidates(sampler, cands, [d.score for d in tried], 0, persons, tracks, w, h)
        unchecked = []
        lm_boxes += [p.box.copy() for p in persons[len(lm_boxes):]]
        faced = self.unclaimed_faces(face_only, persons)
        out = [p for p in faced]
        for d in self._claim(pending, persons, tracks, lm_boxes, boxed):  # the new people too
            if any(boxes_agree(d.box, p.box, cfg.person_box_match_iou) for p in faced):
                continue
            if d.score >= cfg.person_detector_min_score or continues_box_only(d.box, box_tracks):
                out.append(box_only_person(d))
            elif check and not any(d is t for t in tried):
                unchecked.append(d)
        out += [box_only_person(d) for d in self._confirmed(sampler, unchecked, persons + out,
                                                            w, h)]
        ages = [0] * len(out)
        for p, age in held_box_only(box_tracks, scanned_tiles, max_held, persons + out):
            out.append(p)
            ages.append(age)
        if not cfg.publish_box_only:
            return [], [], boxed
        return out[:cfg.max_box_only], ages[:cfg.max_box_only], boxed

    @staticmethod
    def refind_faces(dets: Sequence[Detection], face_tracks: Sequence[BoxTrack],
                     scanned_tiles: Sequence[RotatedRect], persons: Sequence[Person], w: int,
                     h: int
                     ) -> Tuple[List[Tuple[Person, Detection]], List[Detection], List[BoxTrack]]:
        """Last frame's box-only people found through a face (``face_tracks``, their
        ``BoxTrack.face`` set), on a frame where BlazePose's detector ran (``dets``, scanning the
        whole image and ``scanned_tiles``). A detection whose face centre lies in a track's face
        box and in no head region of ``persons`` continues that person without a landmark run
        (their crop found no usable landmarks before, and a hidden person's crop usually cannot
        run: the partner's overlaps it, or ``max_persons`` are tracked): the box moves with the
        face, the score is the detection's. Returns those people, each with the detection (as
        ``add_detections`` does), the other detections, and the tracks not found again whose
        face lies in no scanned tile (the closer look that may find a small face has not been
        there: held on, as ``person_fusion.held_box_only`` holds box-only people; with no tile
        scanned, the whole image was the detector's only look and none is held)."""
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        out: List[Tuple[Person, Detection]] = []
        rest: List[Detection] = []
        left = [t for t in face_tracks if t.face is not None]
        for d in dets:
            c = 0.5 * (np.asarray(d.box[:2], np.float64) + d.box[2:])
            k = next((k for k, t in enumerate(left)
                      if t.face[0] <= c[0] <= t.face[2] and t.face[1] <= c[1] <= t.face[3]),
                     None)
            if k is None or face_mod.overlaps_any(d.box, heads):
                rest.append(d)
                continue
            t = left.pop(k)
            move = c - 0.5 * (np.asarray(t.face[:2], np.float64) + t.face[2:])
            box = np.asarray(t.box, np.float64) + np.tile(move, 2)
            box[[0, 2]] = np.clip(box[[0, 2]], 0, w - 1)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, h - 1)
            out.append((box_only_person(Detection(box.astype(np.float32), d.score,
                                                  d.keypoints)), d))
        unseen = ([t for t in left if not face_mod.overlaps_any(t.face, scanned_tiles)]
                  if scanned_tiles else [])
        return out, rest, unseen

    @staticmethod
    def unclaimed_faces(face_only: Sequence[Tuple[Person, Detection]],
                        persons: Sequence[Person]) -> List[Person]:
        """The box-only people found through a face (``add_detections``) on whose face none of
        ``persons`` has a head."""
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        return [p for p, d in face_only if not face_mod.overlaps_any(d.box, heads)]

    def _claim(self, dets: Sequence[Detection], persons: List[Person],
               tracks: List[BodyTrack], lm_boxes: List[np.ndarray], boxed: set
               ) -> List[Detection]:
        """The detector boxes that show none of ``persons`` (``person_fusion.box_owner`` on
        their landmarks' boxes ``lm_boxes``). The first (best) box that covers most of a
        person's landmarks' box becomes the person's box (``take_box``; the person's index goes
        into ``boxed``); a box showing only a part of a person stays theirs without changing
        their box."""
        free = []
        for d in dets:
            k, covers = box_owner(d.box, np.asarray(lm_boxes).reshape(-1, 4),
                                  self.config.person_box_match_iou)
            if k is None:
                free.append(d)
            elif covers and k not in boxed and covers_most(d.box, lm_boxes[k]):
                tracks[k].box_margin = take_box(persons[k], lm_boxes[k], d.box)
                boxed.add(k)
        return free

    def _confirmed(self, sampler: CropSampler, weak: Sequence[Detection],
                   known: Sequence[Person], w: int, h: int) -> List[Detection]:
        """The weak boxes (best first, at most ``max_box_checks``) in which the landmark model
        finds a person (pose flag >= ``min_pose_presence``) whose landmarks' box agrees with the
        detector's and who is none of the ``known`` people."""
        cfg = self.config
        weak = [d for d in weak if body_mod.roi_from_box(d.box).width >= cfg.min_crop_px]
        weak = weak[:cfg.max_box_checks]
        if not weak:
            return []
        lm = self.landmarker.run(sampler, [body_mod.roi_from_box(d.box) for d in weak])
        out = []
        for i, d in enumerate(weak):
            if lm.flag[i] < cfg.min_pose_presence:
                continue
            seen = self._make_person(lm, i, d.score, w, h)
            if seen is None:
                continue
            agree = boxes_agree(d.box, seen.box, cfg.person_box_match_iou)
            dup = any(not p.box_only
                      and body_mod.same_person(seen.body, p.body, w, h, cfg.duplicate_distance)
                      for p in known)
            if agree and not dup:
                out.append(d)
        return out
