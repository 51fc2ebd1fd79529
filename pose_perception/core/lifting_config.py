"""The lifting's parameters and body tables (ROS-free): :class:`LiftingConfig`, each layout's body
radii (how far a joint centre lies behind the skin) and anchor joints (pooled for the person's
depth). See ``docs/lifting.md`` for how :class:`pose_perception.core.lifting.Lifter` uses them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from .layouts import BLAZEPOSE33_TO_COCO17
from .occlusion import SKELETONS, SkeletonSpec

# ---------------------------------------------------------------------------- body model tables
_BP = np.zeros(33)
_BP[11:13] = 0.06      # shoulders
_BP[13:15] = 0.04      # elbows
_BP[15:17] = 0.03      # wrists
_BP[17:23] = 0.012     # pinky, index, thumb
_BP[23:25] = 0.09      # hips
_BP[25:27] = 0.05      # knees
_BP[27:29] = 0.035     # ankles
_BP[29:31] = 0.02      # heels
_BP[31:33] = 0.015     # foot index (toes)
_HAND = np.full(21, 0.008)
_HAND[0] = 0.02                    # wrist
_HAND[[1, 5, 9, 13, 17]] = 0.012   # thumb CMC and knuckles

BODY_RADIUS_M: Dict[str, np.ndarray] = {
    "blazepose33": _BP,
    "coco17": _BP[list(BLAZEPOSE33_TO_COCO17)],
    "hand21": _HAND,
    "face468": np.zeros(468),
    "ibug68": np.zeros(68),
}


def joint_radii(layout: str, n: int, table: Optional[np.ndarray] = None) -> np.ndarray:
    """(n,) body radius [m] of each point of ``layout``: how far the lifted point (joint centre)
    lies behind the skin, from ``table`` or :data:`BODY_RADIUS_M`; zeros for a layout without a
    table (its points are lifted as surface points). The safety monitor subtracts the same radii
    to measure distances to the body surface. Raises ``ValueError`` for a table of another size."""
    r = BODY_RADIUS_M.get(layout) if table is None else table
    r = np.zeros(n) if r is None else np.asarray(r, dtype=np.float64).reshape(-1)
    if r.size != n:
        raise ValueError(f"radius table of layout '{layout}' has {r.size} values, need {n}")
    return r


# joints pooled for the person-level depth (None = all)
ANCHOR_JOINTS: Dict[str, Optional[Tuple[int, ...]]] = {
    "blazepose33": (11, 12, 23, 24),
    "coco17": (5, 6, 11, 12),
    "hand21": (0, 1, 5, 9, 13, 17),
    "face468": (1, 4, 5, 6, 9, 151, 168, 195, 197, 50, 280, 101, 330, 36, 266),
    "ibug68": tuple(range(27, 48)),
}


@dataclass
class LiftingConfig:
    """Parameters of :class:`Lifter` (defaults from sensor physics and anthropometry)."""

    sample_grid: int = 7                 # samples on an n x n grid inside each window disc
    sample_fraction: float = 0.8         # window radius / joint body radius
    min_window_m: float = 0.012          # window radius floor (metres at the person)
    min_window_px: float = 1.0
    max_window_px: float = 40.0
    anchor_window_m: float = 0.05        # window radius around anchor joints
    anchor_min_support: float = 0.2      # share of pooled anchor samples the person cluster needs
    min_samples: int = 3                 # per joint window
    min_support: float = 0.15            # share of a joint window's valid samples
    gap_min_m: float = 0.05              # depth gap that always separates two surfaces
    gap_noise_k: float = 3.0             # ... or this many sensor sigmas
    depth_noise_a: float = 0.002         # sensor depth sigma = a * z^2 (m); RealSense/Kinect-like
    keypoint_sigma_px: float = 3.0       # 2D keypoint error used for the lateral uncertainty
    band_front_m: float = 1.0            # person band around the torso surface depth
    band_back_m: float = 1.0
    model_band_m: float = 0.35           # per-joint band around the model-predicted depth
    min_depth_score: float = 0.5         # below: likely occluded, no depth (model fill instead)
    min_range_m: float = 0.1             # depth readings nearer than this are ignored
    surface_offset_scale: float = 1.0    # 0 disables the surface -> joint-centre correction
    offset_sigma_rel: float = 0.3
    model_fill: bool = True
    model_fit_min_joints: int = 3        # rigid fit from this many joints, else translation
    model_outlier_m: Optional[float] = 0.3   # replace depth joints this far from a good fit
    model_outlier_min_inliers: int = 6
    model_sigma_m: float = 0.05          # prior uncertainty of the model's relative 3D
    face_band_m: float = 0.15            # band around a face's reference depth
    hand_band_m: float = 0.25
    occlusion_repair: bool = True        # skeleton reasoning for joints hidden by the body
    occlusion_tol_m: float = 0.04        # measured surface "explained" by an occluding part
    bone_tol_m: float = 0.03             # bone length accepted within max(this, rel * length)
    bone_tol_rel: float = 0.12
    bone_sigma_rel: float = 0.12         # uncertainty of a reference bone length
    gross_bone_m: float = 0.08           # a limb joint whose bone is off by more than
    gross_bone_rel: float = 0.35         # max(this, rel * length) is invalid
    head_pose: bool = True               # lift_frame also estimates faces' head poses
    radii: Dict[str, np.ndarray] = field(default_factory=dict)    # per-layout overrides
    anchors: Dict[str, Optional[Tuple[int, ...]]] = field(default_factory=dict)
    skeletons: Dict[str, SkeletonSpec] = field(default_factory=dict)

    def skeleton(self, layout: str) -> Optional[SkeletonSpec]:
        return self.skeletons.get(layout, SKELETONS.get(layout))

    def radius_table(self, layout: str, n: int) -> np.ndarray:
        return joint_radii(layout, n, self.radii.get(layout))

    def anchor_joints(self, layout: str, n: int) -> np.ndarray:
        a = self.anchors.get(layout, ANCHOR_JOINTS.get(layout))
        return np.arange(n) if a is None else np.asarray(a, dtype=np.intp)
