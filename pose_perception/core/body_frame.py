"""A person's 3D skeleton seen in a gravity-aligned frame: what the posture (``core.posture``)
and body gesture (``core.body_gestures``) rules share (heights along up, the person's axes, the
joints' means); points are :mod:`.vec3` tuples. ROS-free.

``up`` is a unit vector in the frame of the 3D points, pointing away from the floor. The ROS
layer takes it from TF (the z axis of the robot's base frame expressed in the points' frame);
without TF the camera is assumed level, and in the camera optical frame (x right, y down,
z forward) up is then :data:`LEVEL_CAMERA_UP` = (0, -1, 0).

The 3D comes from the depth lifting (``Keypoints.xyz``) when the four torso joints are valid
there, else from the body model's own metric 3D (``Person.world``: hip-centred metres, axes
like the camera's, x right, y down, z forward); :attr:`Skeleton.from_model` says which. Joint
indices are BlazePose-33's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import List, Optional, Sequence

import numpy as np

from . import vec3
from .joints import Joints, joints_of, points_or_none
from .types import Keypoints
from .vec3 import Vec, unit

LEVEL_CAMERA_UP = (0.0, -1.0, 0.0)

NOSE = 0
FACE = (0, 2, 5, 7, 8, 9, 10)                 # nose, eyes, ears, mouth corners
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_HAND, R_HAND = (15, 17, 19, 21), (16, 18, 20, 22)   # wrist, pinky, index, thumb
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28
FEET = (27, 28, 29, 30, 31, 32)               # ankles, heels, toes
TORSO = (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP)


def check_up(up: Sequence[float]) -> Vec:
    """``up`` as a unit 3-vector; ``ValueError`` when it is zero or not finite."""
    u = unit(vec3.vec(up if isinstance(up, tuple) else np.asarray(up, np.float64).reshape(3)))
    if u is None:
        raise ValueError(f"up must be a finite non-zero 3-vector, got {tuple(np.ravel(up))}")
    return u


def ramp(x: float, x0: float, x1: float) -> float:
    """0 at ``x0``, 1 at ``x1``, linear between and clipped (``x0 > x1``: a falling ramp); NaN
    stays NaN."""
    x = float(x)
    if not math.isfinite(x):
        return float("nan")
    r = (x - x0) / (x1 - x0)
    return 0.0 if not r > 0.0 else 1.0 if r >= 1.0 else r     # min(1, max(0, r)), NaN: 0


@dataclass
class Skeleton:
    """BlazePose-33 points (metres, :mod:`.vec3` tuples, None where invalid) with the frame's
    ``up``."""

    pts: List[Optional[Vec]]     # 33
    up: Vec                      # unit
    from_model: bool = False

    def point(self, i: int) -> Optional[Vec]:
        return self.pts[i]

    def valid(self, indices: Sequence[int]) -> List[Vec]:
        """The valid points among ``indices``, in order."""
        return [p for p in (self.pts[i] for i in indices) if p is not None]

    def mean(self, indices: Sequence[int], need_all: bool = False) -> Optional[Vec]:
        """Mean of the valid points among ``indices`` (None when none is, or when one is
        missing and ``need_all``)."""
        ok = self.valid(indices)
        if not ok or (need_all and len(ok) < len(indices)):
            return None
        return vec3.mean(ok)

    def height(self, p: Optional[Vec]) -> float:
        """Coordinate of a point along up (NaN for None)."""
        return vec3.dot(p, self.up) if p is not None else math.nan

    def horizontal(self, v: Vec) -> Vec:
        """The part of a vector perpendicular to up."""
        return vec3.sub(v, vec3.scale(self.up, vec3.dot(v, self.up)))

    @cached_property
    def left_axis(self) -> Optional[Vec]:
        """Horizontal unit vector towards the person's left (from the shoulders, else hips)."""
        for a, b in ((L_SHOULDER, R_SHOULDER), (L_HIP, R_HIP)):
            pa, pb = self.pts[a], self.pts[b]
            if pa is not None and pb is not None:
                u = unit(self.horizontal(vec3.sub(pa, pb)))
                if u is not None:
                    return u
        return None

    @cached_property
    def forward_axis(self) -> Optional[Vec]:
        """Horizontal unit vector the person's chest faces (left x up)."""
        left = self.left_axis
        return None if left is None else vec3.cross(left, self.up)


def skeleton_from_arrays(xyz, valid, up) -> Skeleton:
    """A :class:`Skeleton` from (33, 3) points and their validity (non-finite points are
    invalid whatever ``valid`` says)."""
    return Skeleton(points_or_none(np.asarray(xyz, np.float64).reshape(-1, 3), valid),
                    check_up(up))


def skeleton_from_keypoints(kp: Keypoints, up, world: Optional[np.ndarray] = None,
                            world_up=None, min_score: float = 0.0,
                            joints: Optional[Joints] = None) -> Optional[Skeleton]:
    """The person's skeleton: the lifted ``kp.xyz`` when its four torso joints are valid, else
    the model's ``world`` (33, 3) with ``world_up`` (up in the camera's axes; default ``up``,
    right when the keypoints are in the camera frame). Joints scored below ``min_score`` are
    left out. None when neither source has the torso. ``joints``: ``kp``'s, when already read
    (:func:`~.joints.joints_of`)."""
    if kp.layout != "blazepose33":
        raise ValueError(f"body rules need layout 'blazepose33', got '{kp.layout}'")
    u = check_up(up)
    if joints is None:
        joints = joints_of(kp)
    if joints is not None:
        pts = joints.scored(min_score)
        if all(pts[i] is not None for i in TORSO):
            return Skeleton(pts, u)
    if world is not None and np.shape(world) == (33, 3):
        seen = (np.asarray(kp.score, np.float64) >= min_score)
        sk = skeleton_from_arrays(world, seen, up if world_up is None else world_up)
        if all(sk.pts[i] is not None for i in TORSO):
            sk.from_model = True
            return sk
    return None
