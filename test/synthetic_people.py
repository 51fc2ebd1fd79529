"""Synthetic people for the tracking / smoothing / association / safety tests.

A standing person (BlazePose-33 joints, metres, relative to the hip centre, camera optical frame:
x right, y down, z forward, facing the camera) placed at (x, y, z) and projected with a pinhole
camera, so that 2D and 3D agree.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from pose_perception.core.types import SOURCE_DEPTH, Keypoints, Person

FX = FY = 600.0
CX, CY = 320.0, 240.0

# (x, y, dz) of each BlazePose-33 joint; the person's left is +x (image right) when facing us
_T = {
    0: (0.0, -0.65, -0.10), 1: (0.015, -0.69, -0.08), 2: (0.03, -0.69, -0.08),
    3: (0.045, -0.69, -0.07), 4: (-0.015, -0.69, -0.08), 5: (-0.03, -0.69, -0.08),
    6: (-0.045, -0.69, -0.07), 7: (0.075, -0.67, 0.0), 8: (-0.075, -0.67, 0.0),
    9: (0.025, -0.61, -0.08), 10: (-0.025, -0.61, -0.08),
    11: (0.18, -0.50, 0.0), 12: (-0.18, -0.50, 0.0), 13: (0.22, -0.22, 0.0),
    14: (-0.22, -0.22, 0.0), 15: (0.24, 0.02, -0.02), 16: (-0.24, 0.02, -0.02),
    17: (0.25, 0.08, -0.02), 18: (-0.25, 0.08, -0.02), 19: (0.245, 0.09, -0.03),
    20: (-0.245, 0.09, -0.03), 21: (0.23, 0.06, -0.04), 22: (-0.23, 0.06, -0.04),
    23: (0.10, 0.0, 0.0), 24: (-0.10, 0.0, 0.0), 25: (0.10, 0.45, 0.0), 26: (-0.10, 0.45, 0.0),
    27: (0.10, 0.88, 0.0), 28: (-0.10, 0.88, 0.0), 29: (0.10, 0.92, 0.05),
    30: (-0.10, 0.92, 0.05), 31: (0.10, 0.92, -0.10), 32: (-0.10, 0.92, -0.10),
}
TEMPLATE = np.array([_T[i] for i in range(33)], np.float64)


def project(xyz: np.ndarray) -> np.ndarray:
    return np.stack([FX * xyz[:, 0] / xyz[:, 2] + CX, FY * xyz[:, 1] / xyz[:, 2] + CY], axis=1)


def make_person(x: float, z: float, y: float = 0.0, *, with_3d: bool = True,
                noise_px: float = 0.0, noise_m: float = 0.0,
                rng: Optional[np.random.Generator] = None, score: float = 0.9) -> Person:
    """A person whose hip centre is at (x, y, z) metres in the camera frame."""
    xyz = TEMPLATE + np.array([x, y, z])
    xy = project(xyz)
    if rng is not None and noise_px > 0:
        xy = xy + rng.normal(0.0, noise_px, xy.shape)
    kp = Keypoints("blazepose33", xy, np.full(33, score))
    if with_3d:
        kp.init_3d()
        meas = xyz + (rng.normal(0.0, noise_m, xyz.shape) if rng is not None and noise_m > 0
                      else 0.0)
        kp.xyz = meas.astype(np.float32)
        kp.xyz_valid[:] = True
        kp.xyz_sigma[:] = max(noise_m, 0.01)
        kp.xyz_source[:] = SOURCE_DEPTH
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = 0.05 * (hi - lo)
    box = np.concatenate([lo - pad, hi + pad])
    return Person(body=kp, box=box, score=score)
