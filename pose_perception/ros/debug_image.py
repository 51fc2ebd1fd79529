"""The annotated colour image of ``people/debug_image``: bones in each track's colour, joints
coloured by confidence (red -> green), face points, hands, and a label with the track id and the
distance of the person's centroid; under it the posture and gestures, and the pointing ray from
the fingertip to the pointed-at surface (a circle). Drawn with OpenCV on a copy of the RGB
image."""
from __future__ import annotations


import cv2
import numpy as np

from ..core.body_language import gesture_words
from ..core.colors import confidence_rgb, to_uint8, track_rgb
from ..core.layouts import LAYOUTS
from ..core.types import FrameResult, Keypoints

MIN_SCORE = 0.3


def _draw_keypoints(img: np.ndarray, kps: Keypoints, colour, radius: int, width: int) -> None:
    layout = LAYOUTS.get(kps.layout)
    xy = kps.xy
    ok = np.all(np.isfinite(xy), axis=1) & (kps.score >= MIN_SCORE)
    pts = np.round(np.nan_to_num(xy)).astype(np.int32)
    if layout is not None:
        for a, b in layout.edges:
            if a < len(pts) and b < len(pts) and ok[a] and ok[b]:
                cv2.line(img, tuple(map(int, pts[a])), tuple(map(int, pts[b])), colour, width,
                         cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        cv2.circle(img, tuple(map(int, pts[i])), radius, to_uint8(confidence_rgb(kps.score[i])), -1,
                   cv2.LINE_AA)


def _draw_body_language(img: np.ndarray, body, x0: int, y0: int, colour, scale: int) -> None:
    words = [body.posture.name.lower()] if body.posture else []
    words += [gesture_words(g) for g in body.gestures]
    if words:
        cv2.putText(img, ", ".join(words), (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale,
                    colour, scale, cv2.LINE_AA)
    px = body.pointing_px
    if px is not None and np.all(np.isfinite(px)):
        a, b = (tuple(int(round(v)) for v in q) for q in px)
        cv2.arrowedLine(img, a, b, (255, 140, 0), 2 * scale, cv2.LINE_AA, tipLength=0.05)
        cv2.circle(img, b, 8 * scale, (255, 140, 0), 2 * scale, cv2.LINE_AA)


def draw_result(rgb: np.ndarray, result: FrameResult) -> np.ndarray:
    """A new RGB image with ``result`` drawn on ``rgb``."""
    img = np.ascontiguousarray(rgb).copy()
    scale = max(1, int(round(max(img.shape[:2]) / 640)))
    bodies = {it.track_id: it.body for it in result.interactions
              if getattr(it, "body", None) is not None}
    for p in result.persons:
        colour = to_uint8(track_rgb(p.track_id or 0))
        _draw_keypoints(img, p.body, colour, 3 * scale, 2 * scale)
        for hand in p.hands:
            _draw_keypoints(img, hand.keypoints, colour, 2 * scale, scale)
        box = np.asarray(p.box, np.float64)
        if box.size == 4 and np.all(np.isfinite(box)):
            x0, y0 = int(box[0]), int(box[1])
            label = f"id {p.track_id}" if p.track_id else "untracked"
            if p.box_only:                    # no joints to draw: the detector's box
                cv2.rectangle(img, (x0, y0), (int(box[2]), int(box[3])), colour, scale,
                              cv2.LINE_AA)
                label += " (box only)"
            if p.centroid is not None and np.all(np.isfinite(p.centroid)):
                label += f"  {float(np.linalg.norm(p.centroid)):.2f} m"
            cv2.putText(img, label, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5 * scale, colour, scale, cv2.LINE_AA)
            if p.track_id in bodies:
                _draw_body_language(img, bodies[p.track_id], x0, max(12, y0 - 6) + 16 * scale,
                                    colour, scale)
    for face in result.faces:
        xy = face.mesh.xy
        ok = np.all(np.isfinite(xy), axis=1)
        for x, y in np.round(xy[ok]).astype(np.int32)[::2]:
            cv2.circle(img, (int(x), int(y)), 1, (255, 255, 255), -1)
    return img
