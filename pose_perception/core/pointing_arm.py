"""3D measures of an arm and a hand for pointing (ROS-free): the elbow angle, how far the arm is
raised from hanging, how far the wrist is from the torso (``blazepose33``), and how far the index
finger sticks out beyond the other fingers (``hand21``). The rules that use them are in
:mod:`.pointing`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from . import vec3
from .joints import Joints, as_joints
from .types import Hand, Keypoints
from .vec3 import Vec, angle_deg

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
    joints: Tuple[Vec, Vec, Vec]     # shoulder, elbow, wrist


def score_at_least(min_score: float) -> float:
    """The threshold a score (float64) must reach for a float32 score to be ``>= min_score``
    as numpy compares them (in float32): ``min_score`` rounded to float32."""
    return float(np.float32(min_score))


def segment_distance(p: Vec, a: Vec, b: Vec) -> float:
    """Distance from point ``p`` to the segment ``a``-``b``."""
    ab = vec3.sub(b, a)
    t = min(max(vec3.dot(vec3.sub(p, a), ab) / max(vec3.dot(ab, ab), 1e-12), 0.0), 1.0)
    return vec3.dist(p, vec3.add(a, vec3.scale(ab, t)))


def arm_pose(body: Union[Keypoints, Joints], side: str,
             min_score: float = 0.0) -> Optional[ArmPose]:
    """The ``side`` arm's measures, or None without a valid shoulder, elbow and wrist (scored
    at least ``min_score``). The torso's down axis is mid-shoulder -> mid-hip (the camera's +y
    without hips)."""
    j = as_joints(body)
    if j is None:
        return None
    min_score = score_at_least(min_score)
    ids = ARM[side]
    pts = [j.get(i, min_score) for i in ids]
    if any(p is None for p in pts):
        return None
    s, e, w = pts
    shoulders = [p for p in (j.get(i, min_score) for i in SHOULDERS) if p is not None]
    hips = [p for p in (j.get(i, min_score) for i in HIPS) if p is not None]
    top = vec3.mean(shoulders)
    bottom = vec3.mean(hips) if hips else None
    down = vec3.unit(vec3.sub(bottom, top)) if hips else None
    if down is None:
        down = (0.0, 1.0, 0.0)
    if bottom is None:
        bottom = vec3.add(top, vec3.scale(down, 0.5))
    elbow = angle_deg(vec3.sub(s, e), vec3.sub(w, e))
    if not math.isfinite(elbow):
        return None
    return ArmPose(elbow, angle_deg(vec3.sub(w, s), down), segment_distance(w, top, bottom),
                   min(j.score[i] for i in ids), (s, e, w))


def index_extended(hand: Union[Hand, Joints]) -> Optional[float]:
    """The index tip's distance to the hand's wrist over the other fingertips' (median), in 3D;
    None when the wrist, the index tip or two of the other fingertips have no 3D. ``hand``: a
    ``Hand`` or its keypoints' joints."""
    j = hand if isinstance(hand, Joints) else as_joints(hand.keypoints)
    if j is None:
        return None
    w, tip = j.get(HAND_WRIST), j.get(INDEX_TIP)
    others = [p for p in (j.get(i) for i in OTHER_TIPS) if p is not None]
    if w is None or tip is None or len(others) < 2:
        return None
    d = sorted(vec3.dist(p, w) for p in others)
    others_m = d[1] if len(d) == 3 else (d[0] + d[1]) / 2
    return vec3.dist(tip, w) / max(others_m, 1e-6)
