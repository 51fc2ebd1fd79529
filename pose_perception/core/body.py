"""BlazePose body keypoints: person detector, rotated body crops, 33 landmarks per person.

``PoseDetector`` finds people (by their face, as BlazePose does) and gives one rotated crop per
person; ``PoseLandmarker`` runs ``pose_landmark_full`` on a batch of crops and brings the 39
landmarks (33 body + 6 auxiliary ROI points) back to the image, refined with the model's heatmap
(MediaPipe's 7x7 window rule). The next frame's crop comes from the auxiliary points 33/34 (hip
centre -> body size/rotation point), exactly as MediaPipe tracks a person. ROS-free.

Confidence per keypoint is ``sigmoid(visibility logit)`` as the model outputs it: the
probability that the point is visible (in the image and not occluded), not a localisation error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .crops import (CropBatcher, CropSampler, rect_from_alignment, transform_points,
                    transform_rect)
from .inference import OnnxModel
from .ssd import POSE_DETECTOR, Detection, DetectorSpec, SsdDetector
from .types import Keypoints, RotatedRect

NUM_BODY = 33
NUM_ALL = 39          # 33 + auxiliary points (33 hip centre, 34 body size/rotation, ...)
INPUT = 256
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
ROI_SCALE = 1.25


def is_segmentation_output(name: str, shape) -> bool:
    """The landmark model's [B, 256, 256, 1] segmentation logits, unused here (pass as
    ``OnnxModel(drop_outputs=...)`` to skip computing them: about half the model's time)."""
    return len(shape) == 4 and shape[-1] == 1


def roi_from_detection(det: Detection) -> RotatedRect:
    """Body crop from a detection: keypoint 0 (hip centre) -> 1 (above the head), target 90
    degrees, side 2*|kp1 - kp0| * 1.25."""
    r = rect_from_alignment(det.keypoints[0], det.keypoints[1], math.pi / 2)
    return transform_rect(r, ROI_SCALE, ROI_SCALE, square_long=True)


def roi_from_landmarks(xy: np.ndarray) -> RotatedRect:
    """Next-frame body crop from the auxiliary landmarks 33 (hip centre) and 34 (MediaPipe's
    PoseLandmarksToRoi). ``xy``: (39, 2) image pixels."""
    r = rect_from_alignment(xy[33], xy[34], math.pi / 2)
    return transform_rect(r, ROI_SCALE, ROI_SCALE, square_long=True)


# Body crop guessed from a face, from human proportions: the hip centre lies about 5 face widths
# below the face centre and MediaPipe's body crop is about 16 face widths wide (2 x 1.25 x the
# hip-to-above-head distance of ~6.5 face widths). Only a seed: the landmarks then give the crop.
FACE_TO_HIP = 5.0
FACE_TO_BODY_CROP = 16.0


def roi_from_face(box: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray) -> RotatedRect:
    """A body crop seeded from a face detection (``box`` x0, y0, x1, y1; the eyes as they appear
    left and right in the image), for people the person detector missed."""
    f = float(box[2] - box[0])
    rot = math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    down = (-math.sin(rot), math.cos(rot))
    return RotatedRect(cx + FACE_TO_HIP * f * down[0], cy + FACE_TO_HIP * f * down[1],
                       FACE_TO_BODY_CROP * f, FACE_TO_BODY_CROP * f, rot)


def roi_from_box(box: np.ndarray, scale: float = 1.3) -> RotatedRect:
    """Upright body crop around a whole-body detector box (``x0, y0, x1, y1``): centred on the
    box, ``scale`` x its long side (a standing person's hips lie near the box centre; the
    crop derived from the landmarks then refines it)."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = scale * max(x1 - x0, y1 - y0)
    return RotatedRect((x0 + x1) / 2.0, (y0 + y1) / 2.0, side, side, 0.0)


# The landmarks are joint centres and the face's points; the body reaches further: the top of the
# head lies about this many nose-to-shoulder-centre distances above the nose, and skin and
# clothes this fraction of the body's height beyond the outer joints.
HEAD_TOP_FROM_NOSE = 0.6
BODY_MARGIN = 0.04


def visible_box(xy: np.ndarray, presence: np.ndarray, width: int, height: int,
                min_presence: float = 0.5) -> np.ndarray:
    """(4,) ``x0, y0, x1, y1``: the whole visible person (not only the landmarks' extent) from
    the body landmarks present: their box, the head's top added above the nose and a margin
    for the body's width, clipped to the image."""
    box = box_from_landmarks(xy, presence, min_presence=min_presence).astype(np.float64)
    hgt = max(box[3] - box[1], box[2] - box[0])
    p = xy[:NUM_BODY]
    if presence[0] >= min_presence and min(presence[11], presence[12]) >= min_presence:
        head = HEAD_TOP_FROM_NOSE * float(np.linalg.norm((p[11] + p[12]) / 2.0 - p[0]))
        box[1] = min(box[1], p[0, 1] - head)
    m = BODY_MARGIN * hgt
    box += (-m, -m, m, m)
    box[[0, 2]] = np.clip(box[[0, 2]], 0, width - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, height - 1)
    return box.astype(np.float32)


def box_from_landmarks(xy: np.ndarray, presence: Optional[np.ndarray] = None,
                       width: Optional[int] = None, height: Optional[int] = None,
                       min_presence: float = 0.5) -> np.ndarray:
    """(4,) ``x0, y0, x1, y1`` around the body points present (all when none is), clipped to the
    image when its size is given."""
    p = xy[:NUM_BODY]
    if presence is not None:
        keep = presence[:NUM_BODY] >= min_presence
        if keep.sum() >= 2:
            p = p[keep]
    box = np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], np.float32)
    if width is not None and height is not None:
        box[[0, 2]] = np.clip(box[[0, 2]], 0, width - 1)
        box[[1, 3]] = np.clip(box[[1, 3]], 0, height - 1)
    return box


def same_person(a: Keypoints, b: Keypoints, width: int, height: int,
                max_distance: float = 0.1, min_score: float = 0.5, min_common: int = 4) -> bool:
    """Whether two body keypoint sets are one person found twice (e.g. by a tracked crop and by
    the detector).

    Compares the points that *both* sets see (score >= ``min_score``, inside the image): their
    median distance must be below ``max_distance`` x the body size (the larger extent of either
    body's seen points). Points a model only guesses (legs below the image, occluded arms)
    differ a lot between two crops of one person, so comparing all points would keep such
    duplicates. With fewer than ``min_common`` points seen by both, all points are compared."""
    n = min(len(a), len(b))
    pa, pb = a.xy[:n], b.xy[:n]

    def seen(kp: Keypoints, p: np.ndarray) -> np.ndarray:
        return ((kp.score[:n] >= min_score) & (p[:, 0] >= 0) & (p[:, 0] < width)
                & (p[:, 1] >= 0) & (p[:, 1] < height))

    sa, sb = seen(a, pa), seen(b, pb)
    both = sa & sb
    if int(both.sum()) < min_common:
        both = np.ones(n, bool)
        sa = sb = both

    def extent(p: np.ndarray) -> float:
        return float(max(np.ptp(p[:, 0]), np.ptp(p[:, 1]))) if len(p) else 0.0

    size = max(extent(pa[sa]), extent(pb[sb]), 1.0)
    dist = float(np.median(np.linalg.norm(pa[both] - pb[both], axis=1)))
    return dist < max_distance * size


def refine_from_heatmap(xy_norm: np.ndarray, heatmap: np.ndarray,
                        kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmap, vectorised over a batch.

    ``xy_norm``: (B, N, 2) crop-normalised landmarks; ``heatmap``: (B, H, W, N) logits. Each
    landmark inside the heatmap moves to the sigmoid-weighted mean cell of the ``kernel`` window
    around it when that window's maximum confidence is >= ``min_confidence``. Returns a new
    array."""
    b, hh, hw, n = heatmap.shape
    out = xy_norm.copy()
    col = np.trunc(xy_norm[..., 0] * hw).astype(np.int64)       # C++ float->int truncation
    row = np.trunc(xy_norm[..., 1] * hh).astype(np.int64)
    inside = (col >= 0) & (col < hw) & (row >= 0) & (row < hh)
    off = np.arange(kernel) - (kernel - 1) // 2
    rows = row[..., None] + off                                    # (B, N, K)
    cols = col[..., None] + off
    vr = (rows >= 0) & (rows < hh)
    vc = (cols >= 0) & (cols < hw)
    bi = np.arange(b)[:, None, None, None]
    li = np.arange(n)[None, :, None, None]
    vals = heatmap[bi, np.clip(rows, 0, hh - 1)[..., :, None],
                   np.clip(cols, 0, hw - 1)[..., None, :], li]
    conf = 1.0 / (1.0 + np.exp(-vals.astype(np.float32)))         # (B, N, K, K)
    conf *= (vr[..., :, None] & vc[..., None, :])
    total = conf.sum(axis=(2, 3))
    peak = conf.max(axis=(2, 3))
    wc = (conf * cols[..., None, :]).sum(axis=(2, 3))
    wr = (conf * rows[..., :, None]).sum(axis=(2, 3))
    ok = inside & (peak >= min_confidence) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    out[..., 0] = np.where(ok, wc / hw / safe, out[..., 0])
    out[..., 1] = np.where(ok, wr / hh / safe, out[..., 1])
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


@dataclass
class PoseLandmarks:
    """Landmarks of a batch of crops, in image pixels."""

    xy: np.ndarray          # (B, 39, 2) pixels (heatmap-refined)
    z: np.ndarray           # (B, 39) relative depth in pixels (MediaPipe's z, scaled like x)
    visibility: np.ndarray  # (B, 39) sigmoid(visibility logit)
    presence: np.ndarray    # (B, 39) sigmoid(presence logit)
    flag: np.ndarray        # (B,) pose presence probability
    world: np.ndarray       # (B, 33, 3) metres, hip-centred, rotated like the crop
    rois: List[RotatedRect]

    def __len__(self) -> int:
        return len(self.flag)

    def replace(self, i: int, other: "PoseLandmarks", j: int) -> None:
        """Take entry ``j`` of ``other`` as entry ``i``."""
        for name in ("xy", "z", "visibility", "presence", "flag", "world"):
            getattr(self, name)[i] = getattr(other, name)[j]
        self.rois[i] = other.rois[j]


class PoseDetector:
    """The BlazePose person detector (224x224, letterboxed, [-1, 1])."""

    def __init__(self, model: OnnxModel, spec: DetectorSpec = POSE_DETECTOR) -> None:
        self.ssd = SsdDetector(model, spec)

    def detect(self, sampler: CropSampler, min_score: Optional[float] = None,
               max_detections: Optional[int] = None,
               roi: Optional[RotatedRect] = None) -> List[Detection]:
        return self.ssd.detect(sampler, roi=roi, min_score=min_score,
                               max_detections=max_detections)


class PoseLandmarker:
    """``pose_landmark_full`` on rotated 256x256 crops, batched when the model allows it."""

    def __init__(self, model: OnnxModel, max_batch: int = 4, refine: bool = True) -> None:
        self.crops = CropBatcher(model, INPUT, max_batch)
        self.model = model
        self.refine = refine
        self.i_lm = model.find_output(where=lambda s: len(s) == 2 and s[-1] == NUM_ALL * 5)
        self.i_world = model.find_output(where=lambda s: len(s) == 2 and s[-1] == NUM_ALL * 3)
        self.i_flag = model.find_output(where=lambda s: len(s) == 2 and s[-1] == 1)
        self.i_heat = model.find_output(where=lambda s: len(s) == 4 and s[-1] == NUM_ALL)

    def run(self, sampler: CropSampler, rois: Sequence[RotatedRect]) -> PoseLandmarks:
        """Landmarks for each crop (one model call per ``max_batch`` crops)."""
        n = len(rois)
        lm = np.empty((n, NUM_ALL, 5), np.float32)
        world = np.empty((n, NUM_ALL, 3), np.float32)
        flag = np.empty(n, np.float32)
        xy_norm = np.empty((n, NUM_ALL, 2), np.float32)
        mats = []
        for sl, chunk_mats, outs in self.crops.run(sampler, rois):
            k = len(chunk_mats)
            mats += chunk_mats
            lm[sl] = outs[self.i_lm].reshape(k, NUM_ALL, 5)
            world[sl] = outs[self.i_world].reshape(k, NUM_ALL, 3)
            flag[sl] = outs[self.i_flag].reshape(k)
            xy_norm[sl] = lm[sl, :, :2] / INPUT
            if self.refine:
                # each call's heatmap (k x 64 x 64 x 39 floats) is read where it is: copying
                # them into one array cost more than the refinement
                xy_norm[sl] = refine_from_heatmap(xy_norm[sl], outs[self.i_heat])
        xy = np.empty((n, NUM_ALL, 2), np.float32)
        z = np.empty((n, NUM_ALL), np.float32)
        for i, (roi, m) in enumerate(zip(rois, mats)):
            xy[i] = transform_points(m, xy_norm[i] * INPUT)
            z[i] = lm[i, :, 2] / INPUT * roi.width
            c, s = math.cos(roi.rotation), math.sin(roi.rotation)
            wx, wy = world[i, :, 0].copy(), world[i, :, 1].copy()
            world[i, :, 0] = c * wx - s * wy
            world[i, :, 1] = s * wx + c * wy
        return PoseLandmarks(xy, z, _sigmoid(lm[..., 3]), _sigmoid(lm[..., 4]), flag,
                             world[:, :NUM_BODY].copy(), list(rois))
