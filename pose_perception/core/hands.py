"""Hand keypoints (21 per hand) on rotated crops derived from the body's wrist landmarks.

As MediaPipe Holistic does, each visible wrist of a body gives a hand crop from the pose's wrist,
pinky and index points; afterwards the crop follows the previous hand landmarks while they agree
with the body. Hands whose hand flag (presence probability) is below 0.5 are dropped.

Handedness is the person's own left/right, taken from which wrist of the body the crop came from.
(The hand model's own handedness output assumes a mirrored selfie image; it is returned only for
information as ``model_left_probability``, already converted to the person's left for a
non-mirrored camera image.) ROS-free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .crops import (CropBatcher, CropSampler, rotated_bounds_rect, rotation_from_points,
                    transform_rect)
from .inference import OnnxModel
from .types import Hand, Keypoints, RotatedRect

INPUT = 224
NUM_POINTS = 21
MIN_PRESENCE = 0.5
MIN_WRIST_VISIBILITY = 0.1
# BlazePose-33 (wrist, pinky, index) per side of the person
POSE_HAND_POINTS = {"left": (15, 17, 19), "right": (16, 18, 20)}


def roi_from_pose(wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray) -> RotatedRect:
    """Hand crop from the pose (MediaPipe's HandDetectionsFromPoseToRects + x2.7, shift -0.1):
    centred on the palm point (2*index + pinky)/3, side 2*|palm - wrist|, turned so that the
    wrist -> palm vector points up."""
    palm = (2.0 * np.asarray(index, np.float64) + np.asarray(pinky, np.float64)) / 3.0
    size = 2.0 * float(np.hypot(*(palm - np.asarray(wrist, np.float64))))
    rot = rotation_from_points(wrist, palm, math.pi / 2)
    rect = RotatedRect(float(palm[0]), float(palm[1]), size, size, rot)
    return transform_rect(rect, 2.7, 2.7, shift_y=-0.1, square_long=True)


def roi_from_landmarks(xy: np.ndarray) -> RotatedRect:
    """Next-frame hand crop from 21 landmarks (MediaPipe's HandLandmarksToRect, x2, shift
    -0.1): rotation from the wrist to the middle of the index/middle/ring knuckles' area, tight
    rotated bounds."""
    xy = np.asarray(xy, np.float64)
    mid = ((xy[5] + xy[13]) / 2.0 + xy[9]) / 2.0      # index/ring MCP mean, then with middle MCP
    rot = rotation_from_points(xy[0], mid, math.pi / 2)
    rect = rotated_bounds_rect(xy, rot)
    return transform_rect(rect, 2.0, 2.0, shift_y=-0.1, square_long=True)


def tracked_roi_agrees(prev: RotatedRect, reference: RotatedRect, max_shift: float = 0.4,
                       max_scale: float = 2.0) -> bool:
    """Whether a crop tracked from the previous hand landmarks is still where the body's wrist
    says the hand is (centre within ``max_shift`` x reference size, size within a factor)."""
    size = max(reference.width, 1e-6)
    if math.hypot(prev.cx - reference.cx, prev.cy - reference.cy) > max_shift * size:
        return False
    return 1.0 / max_scale <= prev.width / size <= max_scale


@dataclass
class HandResults:
    xyz: np.ndarray          # (B, 21, 3) image pixels, z relative in pixels
    flag: np.ndarray         # (B,) hand presence probability
    # (B,) model's probability that this is the person's left hand (non-mirrored image), which
    # is MediaPipe's P('Right') (MediaPipe assumes a mirrored selfie image)
    model_left: np.ndarray
    rois: List[RotatedRect]
    # (B, 21, 3) the model's metric 3D landmarks (metres, origin near the hand's centre), turned
    # like the crop into image axes as MediaPipe's WorldLandmarkProjection does; None if absent
    world: Optional[np.ndarray] = None


class HandLandmarker:
    """``hand_landmark_full`` on rotated 224x224 crops, batched when the model allows it."""

    def __init__(self, model: OnnxModel, max_batch: int = 4) -> None:
        self.crops = CropBatcher(model, INPUT, max_batch)
        self.model = model
        pts = [i for i, s in enumerate(model.output_shapes) if s[-1] == NUM_POINTS * 3]
        ones = [i for i, s in enumerate(model.output_shapes) if s[-1] == 1]
        if len(pts) != 2 or len(ones) != 2:
            from .inference import ModelLoadError
            raise ModelLoadError(f"{model.describe()}: expected two [B,63] and two [B,1] outputs")
        # MediaPipe's (and the converted model's) output order: landmarks, hand flag,
        # handedness, world landmarks
        self.i_lm, self.i_world = pts
        self.i_flag, self.i_handed = ones

    def run(self, sampler: CropSampler, rois: Sequence[RotatedRect]) -> HandResults:
        n = len(rois)
        xyz = np.empty((n, NUM_POINTS, 3), np.float32)
        flag = np.empty(n, np.float32)
        handed = np.empty(n, np.float32)
        world = np.empty((n, NUM_POINTS, 3), np.float32)
        for sl, mats, outs in self.crops.run(sampler, rois):
            lm = outs[self.i_lm].reshape(len(mats), NUM_POINTS, 3)
            flag[sl] = outs[self.i_flag].reshape(-1)
            handed[sl] = outs[self.i_handed].reshape(-1)
            world[sl] = outs[self.i_world].reshape(len(mats), NUM_POINTS, 3)
            for j, m in enumerate(mats):
                self.crops.to_image(m, rois[sl.start + j], lm[j], xyz[sl.start + j])
        for i, roi in enumerate(rois):
            world[i] = rotate_world(world[i], roi.rotation)
        # the model's score is P('Left') for a mirrored image = P(person's right) unmirrored
        return HandResults(xyz, flag, (1.0 - handed).astype(np.float32), list(rois), world)


def rotate_world(world: np.ndarray, rotation: float) -> np.ndarray:
    """World landmarks from crop axes into image axes: turned by the crop's rotation in the x-y
    plane (MediaPipe's WorldLandmarkProjectionCalculator)."""
    c, s = math.cos(rotation), math.sin(rotation)
    out = np.array(world, np.float32, copy=True)
    out[:, 0] = c * world[:, 0] - s * world[:, 1]
    out[:, 1] = s * world[:, 0] + c * world[:, 1]
    return out


def hand_crops_for_body(pose_xy: np.ndarray, visibility: np.ndarray,
                        prev: Optional[dict] = None,
                        min_wrist_visibility: float = MIN_WRIST_VISIBILITY) -> List[tuple]:
    """``[(side, roi, tracked)]`` for each wrist of the body visible enough to look for a hand."""
    out = []
    for side, (w, p, i) in POSE_HAND_POINTS.items():
        if visibility[w] <= min_wrist_visibility:
            continue
        ref = roi_from_pose(pose_xy[w], pose_xy[p], pose_xy[i])
        if ref.width < 2:
            continue
        last = (prev or {}).get(side)
        if last is not None and tracked_roi_agrees(last, ref):
            out.append((side, last, True))
        else:
            out.append((side, ref, False))
    return out


def make_hand(res: HandResults, i: int, side: str,
              gesture: Optional[np.ndarray] = None) -> Hand:
    """Hand ``i`` of ``res``; ``gesture``: its gesture probabilities (core/hand_gestures.py)."""
    kp = Keypoints("hand21", res.xyz[i, :, :2], np.full(NUM_POINTS, res.flag[i], np.float32))
    return Hand(keypoints=kp, handedness=side, score=float(res.flag[i]), roi=res.rois[i],
                gesture=gesture)
