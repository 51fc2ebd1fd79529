"""A person's 3D skeleton seen in a gravity-aligned frame: the small vector math shared by the
posture (``core.posture``) and body gesture (``core.body_gestures``) rules. ROS-free.

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

from dataclasses import dataclass
from typing import Optional, Sequence

import math

import numpy as np

from .types import Keypoints

LEVEL_CAMERA_UP = (0.0, -1.0, 0.0)

NOSE = 0
FACE = (0, 2, 5, 7, 8, 9, 10)                 # nose, eyes, ears, mouth corners
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_HAND, R_HAND = (15, 17, 19, 21), (16, 18, 20, 22)   # wrist, pinky, index, thumb
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28
FEET = (27, 28, 29, 30, 31, 32)               # ankles, heels, toes
TORSO = (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP)
_EPS = 1e-9


def unit(v) -> Optional[np.ndarray]:
    """``v`` normalised, or None when it is (nearly) zero or not finite."""
    v = np.asarray(v, np.float64)
    n = math.sqrt(float(v @ v)) if v.ndim == 1 else float(np.linalg.norm(v))
    return v / n if math.isfinite(n) and n > _EPS else None


def check_up(up: Sequence[float]) -> np.ndarray:
    """``up`` as a unit float64 3-vector; ``ValueError`` when it is zero or not finite."""
    u = unit(np.asarray(up, np.float64).reshape(3))
    if u is None:
        raise ValueError(f"up must be a finite non-zero 3-vector, got {tuple(np.ravel(up))}")
    return u


def angle_deg(a, b) -> float:
    """Angle between two vectors in degrees (NaN when either is degenerate or None)."""
    if a is None or b is None:
        return float("nan")
    ua, ub = unit(a), unit(b)
    if ua is None or ub is None:
        return float("nan")
    return math.degrees(math.acos(min(1.0, max(-1.0, float(ua @ ub)))))


def ramp(x: float, x0: float, x1: float) -> float:
    """0 at ``x0``, 1 at ``x1``, linear between and clipped (``x0 > x1``: a falling ramp); NaN
    stays NaN."""
    x = float(x)
    if not math.isfinite(x):
        return float("nan")
    return min(1.0, max(0.0, (x - x0) / (x1 - x0)))


@dataclass
class Skeleton:
    """BlazePose-33 points (float64 metres, NaN where invalid) with the frame's ``up``."""

    xyz: np.ndarray          # (33, 3)
    valid: np.ndarray        # (33,) bool
    up: np.ndarray           # (3,) unit
    from_model: bool = False

    def point(self, i: int) -> Optional[np.ndarray]:
        return self.xyz[i] if self.valid[i] else None

    def mean(self, indices: Sequence[int], need_all: bool = False) -> Optional[np.ndarray]:
        """Mean of the valid points among ``indices`` (None when none is, or when one is
        missing and ``need_all``)."""
        ok = [i for i in indices if self.valid[i]]
        if not ok or (need_all and len(ok) < len(indices)):
            return None
        return self.xyz[ok].mean(axis=0)

    def height(self, p: Optional[np.ndarray]) -> float:
        """Coordinate of a point along up (NaN for None)."""
        return float(p @ self.up) if p is not None else float("nan")

    def horizontal(self, v: np.ndarray) -> np.ndarray:
        """The part of a vector perpendicular to up."""
        return v - (v @ self.up) * self.up

    def left_axis(self) -> Optional[np.ndarray]:
        """Horizontal unit vector towards the person's left (from the shoulders, else hips)."""
        for a, b in ((L_SHOULDER, R_SHOULDER), (L_HIP, R_HIP)):
            if self.valid[a] and self.valid[b]:
                u = unit(self.horizontal(self.xyz[a] - self.xyz[b]))
                if u is not None:
                    return u
        return None

    def forward_axis(self) -> Optional[np.ndarray]:
        """Horizontal unit vector the person's chest faces (left x up)."""
        left = self.left_axis()
        return None if left is None else np.cross(left, self.up)


def skeleton_from_arrays(xyz, valid, up) -> Skeleton:
    """A :class:`Skeleton` from (33, 3) points and their validity (non-finite points are
    invalid whatever ``valid`` says)."""
    p = np.asarray(xyz, np.float64).reshape(-1, 3)
    ok = np.asarray(valid, bool).reshape(-1) & np.all(np.isfinite(p), axis=1)
    return Skeleton(np.where(ok[:, None], p, np.nan), ok, check_up(up))


def skeleton_from_keypoints(kp: Keypoints, up, world: Optional[np.ndarray] = None,
                            world_up=None, min_score: float = 0.0) -> Optional[Skeleton]:
    """The person's skeleton: the lifted ``kp.xyz`` when its four torso joints are valid, else
    the model's ``world`` (33, 3) with ``world_up`` (up in the camera's axes; default ``up``,
    right when the keypoints are in the camera frame). Joints scored below ``min_score`` are
    left out. None when neither source has the torso."""
    if kp.layout != "blazepose33":
        raise ValueError(f"body rules need layout 'blazepose33', got '{kp.layout}'")
    seen = np.asarray(kp.score, np.float64) >= min_score
    if kp.xyz is not None and kp.xyz_valid is not None:
        sk = skeleton_from_arrays(kp.xyz, kp.xyz_valid & seen, up)
        if sk.valid[list(TORSO)].all():
            return sk
    if world is not None and np.shape(world) == (33, 3):
        sk = skeleton_from_arrays(world, seen, up if world_up is None else world_up)
        if sk.valid[list(TORSO)].all():
            sk.from_model = True
            return sk
    return None
