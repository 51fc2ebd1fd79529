"""Face mesh (468 points) on rotated head crops, from the body's head landmarks or a detector.

As MediaPipe Holistic does, a person's face crop comes from the pose's face keypoints (nose,
eyes, ears, mouth), so faces far too small for a face detector (~30 px at 2-3 m) still get a mesh;
afterwards each frame's crop comes from the previous mesh while it agrees with the body. Faces
without a body come from the BlazeFace detectors (short range: within ~2 m, full range: ~5 m).
The mesh's presence logit goes through a sigmoid; meshes below 0.5 are dropped. ROS-free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .crops import (CropBatcher, CropSampler, points_box, rect_contains, rect_from_box,
                    rotation_from_points, transform_rect)
from .inference import OnnxModel
from .ssd import FACE_FULL_DETECTOR, FACE_SHORT_DETECTOR, Detection, SsdDetector
from .types import Face, Keypoints, RotatedRect

INPUT = 192
NUM_POINTS = 468
MIN_PRESENCE = 0.5
# pose (BlazePose-33) indices of the face
POSE_FACE = slice(0, 11)
POSE_LEFT_EYE, POSE_RIGHT_EYE = 2, 5
# mesh vertices MediaPipe aligns the crop with: outer corners of the two eyes
MESH_EYE_A, MESH_EYE_B = 33, 263


def roi_from_mesh(xy: np.ndarray) -> RotatedRect:
    """Next-frame face crop from a mesh (MediaPipe's FaceLandmarksToRoi): the mesh's bounding
    box, rotated so that the eye corners 33 -> 263 are level, x1.5, square."""
    rot = rotation_from_points(xy[MESH_EYE_A], xy[MESH_EYE_B], 0.0)
    return transform_rect(rect_from_box(points_box(xy), rot), 1.5, 1.5, square_long=True)


def roi_from_detection(det: Detection) -> RotatedRect:
    """Face crop from a BlazeFace detection (MediaPipe's face_detection_front_detection_to_roi):
    the box, rotated so that the eyes (keypoints 0 -> 1) are level, x1.5, square."""
    rot = rotation_from_points(det.keypoints[0], det.keypoints[1], 0.0)
    return transform_rect(rect_from_box(det.box, rot), 1.5, 1.5, square_long=True)


# Scale of the pose-derived face crop. MediaPipe Holistic scales the box of the six face-detector
# keypoints by 2.0; the pose's 11 face keypoints span a slightly smaller box, and on the
# development frames the crop the mesh itself converges to was 1.0-1.45x the 2.0 crop, so 2.4
# puts the pose crop in the middle of that range.
POSE_FACE_SCALE = 2.4


def roi_from_pose(pose_xy: np.ndarray) -> RotatedRect:
    """Face crop straight from the body's 11 face keypoints (nose, eyes, ears, mouth): their
    bounding box, rotated so that the eyes (right 5 -> left 2) are level, shifted up by 0.1 of
    its size, scaled by ``POSE_FACE_SCALE``, square. Needs no face detector, so it works for
    faces far too small for one."""
    face = pose_xy[POSE_FACE]
    rot = rotation_from_points(pose_xy[POSE_RIGHT_EYE], pose_xy[POSE_LEFT_EYE], 0.0)
    return transform_rect(rect_from_box(points_box(face), rot), POSE_FACE_SCALE,
                          POSE_FACE_SCALE, shift_y=-0.1, square_long=True)


def recrop_roi_from_pose(pose_xy: np.ndarray) -> RotatedRect:
    """MediaPipe Holistic's wide face re-crop from the pose (face keypoints' box x3, square):
    where a face detector may look for the face of this body."""
    face = pose_xy[POSE_FACE]
    rot = rotation_from_points(pose_xy[POSE_RIGHT_EYE], pose_xy[POSE_LEFT_EYE], 0.0)
    return transform_rect(rect_from_box(points_box(face), rot), 3.0, 3.0, square_long=True)


def tracked_roi_agrees(prev: RotatedRect, reference: RotatedRect,
                       max_shift: float = 0.35, max_scale: float = 2.0) -> bool:
    """Whether a crop tracked from the previous mesh still covers the face the body points at:
    centres closer than ``max_shift`` x the reference size and sizes within a factor
    ``max_scale``."""
    size = max(reference.width, 1e-6)
    if math.hypot(prev.cx - reference.cx, prev.cy - reference.cy) > max_shift * size:
        return False
    ratio = prev.width / size
    return 1.0 / max_scale <= ratio <= max_scale


@dataclass
class FaceMeshes:
    """Meshes of a batch of crops."""

    xyz: np.ndarray        # (B, 468, 3) image pixels; z relative, in pixels
    presence: np.ndarray   # (B,) sigmoid(face presence logit)
    rois: List[RotatedRect]

    def replace(self, i: int, other: "FaceMeshes", j: int) -> None:
        """Take entry ``j`` of ``other`` as entry ``i``."""
        self.xyz[i] = other.xyz[j]
        self.presence[i] = other.presence[j]
        self.rois[i] = other.rois[j]

    def face(self, i: int, width: Optional[int] = None, height: Optional[int] = None) -> Face:
        """The ``i``-th mesh as a ``Face`` (score = presence; per-point score = presence)."""
        xy = self.xyz[i, :, :2]
        kp = Keypoints("face468", xy, np.full(NUM_POINTS, self.presence[i], np.float32))
        box = points_box(xy)
        if width is not None and height is not None:
            box[[0, 2]] = np.clip(box[[0, 2]], 0, width - 1)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, height - 1)
        return Face(mesh=kp, box=box, score=float(self.presence[i]), roi=self.rois[i])


class FaceLandmarker:
    """``face_landmark`` (468 points) on rotated 192x192 crops, batched when allowed."""

    def __init__(self, model: OnnxModel, max_batch: int = 4) -> None:
        self.crops = CropBatcher(model, INPUT, max_batch)
        self.model = model
        self.i_mesh = model.find_output(where=lambda s: s[-1] == NUM_POINTS * 3)
        self.i_score = model.find_output(where=lambda s: s[-1] == 1)

    def run(self, sampler: CropSampler, rois: Sequence[RotatedRect]) -> FaceMeshes:
        n = len(rois)
        xyz = np.empty((n, NUM_POINTS, 3), np.float32)
        logit = np.empty(n, np.float32)
        for sl, mats, outs in self.crops.run(sampler, rois):
            mesh = outs[self.i_mesh].reshape(len(mats), NUM_POINTS, 3)
            logit[sl] = outs[self.i_score].reshape(len(mats))
            for j, m in enumerate(mats):
                self.crops.to_image(m, rois[sl.start + j], mesh[j], xyz[sl.start + j])
        presence = 1.0 / (1.0 + np.exp(-np.clip(logit, -80, 80)))
        return FaceMeshes(xyz, presence.astype(np.float32), list(rois))


class FaceDetector:
    """A BlazeFace detector (``'short'``: 128 px input, faces within ~2 m; ``'full'``: 192 px,
    up to ~5 m) on the whole image or inside a region."""

    def __init__(self, model: OnnxModel, kind: str = "full") -> None:
        specs = {"short": FACE_SHORT_DETECTOR, "full": FACE_FULL_DETECTOR}
        if kind not in specs:
            raise ValueError(f"face detector kind must be 'short' or 'full', not {kind!r}")
        self.kind = kind
        self.ssd = SsdDetector(model, specs[kind])

    def detect(self, sampler: CropSampler, roi: Optional[RotatedRect] = None,
               min_score: Optional[float] = None) -> List[Detection]:
        return self.ssd.detect(sampler, roi=roi, min_score=min_score)


def face_roi_for_body(pose_xy: np.ndarray, prev_roi: Optional[RotatedRect],
                      sampler: Optional[CropSampler] = None,
                      detector: Optional["FaceDetector"] = None) -> Tuple[RotatedRect, bool]:
    """The crop to run the mesh on for a body, and whether it was tracked from the previous
    mesh (True) or is new (False).

    A previous mesh crop is kept while it agrees with the body's head (``tracked_roi_agrees``).
    Otherwise, as MediaPipe Holistic does, a short-range face detector looks inside the wide
    re-crop around the body's head and its face nearest to the body's nose gives the crop; with
    no detector or no detection, the crop comes straight from the head keypoints."""
    ref = roi_from_pose(pose_xy)
    if prev_roi is not None and tracked_roi_agrees(prev_roi, ref):
        return prev_roi, True
    if detector is not None and sampler is not None:
        dets = [d for d in detector.detect(sampler, roi=recrop_roi_from_pose(pose_xy))
                if rect_contains(ref, ((d.box[:2] + d.box[2:]) / 2)[None])[0]]
        if dets:
            nose = pose_xy[0]
            best = min(dets, key=lambda d: float(np.hypot(*((d.box[:2] + d.box[2:]) / 2 - nose))))
            return roi_from_detection(best), False
    return ref, False


def overlaps_any(box: np.ndarray, rois: Sequence[RotatedRect]) -> bool:
    """Whether a detection box's centre lies inside any of the crops."""
    c = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])
    return any(bool(rect_contains(r, c)[0]) for r in rois)
