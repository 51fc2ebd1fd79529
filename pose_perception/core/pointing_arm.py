"""3D measures of an arm and a hand for pointing (ROS-free): the elbow angle, how far the arm is
raised from hanging, how far the wrist is from the torso (``blazepose33``), and how far the index
finger sticks out beyond the other fingers (``hand21``). The rules that use them are in
:mod:`.pointing`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .types import Hand, Keypoints

ARM = {"left": (11, 13, 15), "right": (12, 14, 16)}     # BlazePose-33 shoulder, elbow, wrist
SHOULDERS, HIPS = (11, 12), (23, 24)
HAND_WRIST, INDEX_TIP, OTHER_TIPS = 0, 8, (12, 16, 20)  # hand21


@dataclass
class ArmPose:
    """3D measures of one arm."""

    elbow_deg: float                 # upper arm to forearm, 180 = straight
    raise_deg: float                 # shoulder -> wrist against the torso's down axis
    reach_m: float                   # wrist to the mid-shoulder -> mid-hip segment
    score: float                     # the lowest score of shoulder, elbow, wrist
    joints: np.ndarray               # (3, 3) shoulder, elbow, wrist


def joint(kp: Keypoints, i: int, min_score: float = 0.0) -> Optional[np.ndarray]:
    """Keypoint ``i``'s 3D point when valid, finite and scored at least ``min_score``."""
    if kp.xyz is None or kp.xyz_valid is None or not kp.xyz_valid[i] \
            or not kp.score[i] >= min_score:
        return None
    p = np.asarray(kp.xyz[i], np.float64)
    return p if np.all(np.isfinite(p)) else None


def joint_sigma(kp: Keypoints, i: int, default: float) -> float:
    """Keypoint ``i``'s 3D 1-sigma (metres), ``default`` where unknown."""
    s = float(kp.xyz_sigma[i]) if kp.xyz_sigma is not None else math.nan
    return s if math.isfinite(s) and s > 0 else default


def unit(v: np.ndarray) -> Optional[np.ndarray]:
    """``v`` normalised, None for a zero or non-finite vector."""
    n = float(np.linalg.norm(v))
    return v / n if math.isfinite(n) and n > 1e-9 else None


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors (degrees), NaN when either is zero."""
    ua, ub = unit(a), unit(b)
    return math.nan if ua is None or ub is None else math.degrees(
        math.acos(float(np.clip(ua @ ub, -1.0, 1.0))))


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from point ``p`` to the segment ``a``-``b``."""
    ab = b - a
    t = float(np.clip((p - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def arm_pose(body: Keypoints, side: str, min_score: float = 0.0) -> Optional[ArmPose]:
    """The ``side`` arm's measures, or None without a valid shoulder, elbow and wrist. The
    torso's down axis is mid-shoulder -> mid-hip (the camera's +y without hips)."""
    ids = ARM[side]
    pts = [joint(body, i, min_score) for i in ids]
    if any(p is None for p in pts):
        return None
    s, e, w = pts
    shoulders = [p for p in (joint(body, i, min_score) for i in SHOULDERS) if p is not None]
    hips = [p for p in (joint(body, i, min_score) for i in HIPS) if p is not None]
    top = np.mean(shoulders, axis=0)
    down = unit(np.mean(hips, axis=0) - top) if hips else None
    if down is None:
        down = np.array([0.0, 1.0, 0.0])
    bottom = np.mean(hips, axis=0) if hips else top + 0.5 * down
    elbow = angle_deg(s - e, w - e)
    if not math.isfinite(elbow):
        return None
    return ArmPose(elbow, angle_deg(w - s, down), segment_distance(w, top, bottom),
                   float(min(body.score[i] for i in ids)), np.stack(pts))


def index_extended(hand: Hand) -> Optional[float]:
    """The index tip's distance to the hand's wrist over the other fingertips' (median), in 3D;
    None when the wrist, the index tip or two of the other fingertips have no 3D."""
    kp = hand.keypoints
    w, tip = joint(kp, HAND_WRIST), joint(kp, INDEX_TIP)
    others = [p for p in (joint(kp, i) for i in OTHER_TIPS) if p is not None]
    if w is None or tip is None or len(others) < 2:
        return None
    others_m = float(np.median([np.linalg.norm(p - w) for p in others]))
    return float(np.linalg.norm(tip - w)) / max(others_m, 1e-6)
