"""A keypoint set's 3D joints read once into Python floats (:mod:`.vec3` tuples): the view the
per-person rules share (posture, body gestures, pointing) instead of each indexing the numpy
arrays joint by joint. ROS-free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Union

import numpy as np

from .geometry import finite_rows
from .types import Keypoints
from .vec3 import Vec


@dataclass
class Joints:
    """Point ``i`` (metres; None where ``xyz_valid`` is false or it is not finite), its score
    and its 1-sigma (NaN where unknown)."""

    points: List[Optional[Vec]]
    score: List[float]
    sigma: List[float]

    def get(self, i: int, min_score: float = 0.0) -> Optional[Vec]:
        """Joint ``i`` when valid and scored at least ``min_score``."""
        p = self.points[i]
        return p if p is not None and self.score[i] >= min_score else None

    def scored(self, min_score: float) -> List[Optional[Vec]]:
        """Every point, None where invalid or scored below ``min_score``."""
        return [p if p is not None and s >= min_score else None
                for p, s in zip(self.points, self.score)]

    def sigma_of(self, i: int, default: float) -> float:
        """Joint ``i``'s 3D 1-sigma, ``default`` where unknown."""
        s = self.sigma[i]
        return s if math.isfinite(s) and s > 0 else default


def points_or_none(xyz: np.ndarray, valid: np.ndarray) -> List[Optional[Vec]]:
    """(N, 3) points as :mod:`.vec3` tuples, None where ``valid`` (N,) is false or the point is
    not finite."""
    ok = (np.asarray(valid, bool).reshape(-1) & finite_rows(xyz)).tolist()
    return [tuple(p) if good else None for p, good in zip(xyz.tolist(), ok)]


def joints_of(kp: Keypoints) -> Optional[Joints]:
    """The 3D joints of ``kp``; None without 3D."""
    if kp.xyz is None or kp.xyz_valid is None:
        return None
    points = points_or_none(kp.xyz, kp.xyz_valid)
    sigma = kp.xyz_sigma.tolist() if kp.xyz_sigma is not None else [math.nan] * len(points)
    return Joints(points, kp.score.tolist(), sigma)


def as_joints(kp: Union[Keypoints, Joints, None]) -> Optional[Joints]:
    """``kp`` itself when already read, else :func:`joints_of` it."""
    return kp if isinstance(kp, Joints) or kp is None else joints_of(kp)
