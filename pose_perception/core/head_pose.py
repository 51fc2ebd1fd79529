"""Head pose (position + orientation) from a 468-point face mesh, in the camera's optical frame.

Face frame (as REP-155 / ROS4HRI's ``face_<id>``): origin at the sellion (the nose bridge between
the eyes, mesh vertex 168), **x forward** (out of the face, the direction the face looks),
**y to the person's left**, **z up**. ``HeadPose.orientation`` is the quaternion (x, y, z, w, ROS
order) rotating face-frame vectors into the camera frame; ``HeadPose.position`` is the sellion in
metres in the same frame as the face points (the colour camera's optical frame unless moved).

Two estimators, both fitting a canonical face (:data:`CANONICAL_FACE_M`):
- **depth** (3D-3D): a rigid Kabsch fit of the canonical landmarks onto the lifted mesh points
  (``Keypoints.xyz`` from :mod:`pose_perception.core.lifting`) when enough of them have depth and
  the fit is tight (RMS below ``max_fit_rms_m``; at a distance depth noise swamps the face's
  relief and this test fails);
- **pnp** (2D-3D): ``cv2.solvePnP`` (SQPnP) of the canonical landmarks on the 2D mesh with the
  camera model (distortion included). Its distance comes from the average face size; when some
  face points have depth, the translation is rescaled so the face lies at the measured depth.
``method='auto'`` uses depth when its fit is good, else PnP.

The canonical landmark coordinates are from MediaPipe's canonical face model
(``canonical_face_model.obj``, Apache-2.0, Google LLC), converted to metres and this face frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from .camera import CameraModel
from .geometry import matrix_to_quat, median, weighted_kabsch
from .types import SOURCE_DEPTH, HeadPose, Keypoints

# mesh vertex -> (x forward, y left, z up) metres, origin at the sellion (vertex 168)
CANONICAL_FACE_M = {
    1: (0.0224, 0.0000, -0.0440),     # nose tip
    2: (0.0082, 0.0000, -0.0536),     # below the nose
    4: (0.0235, 0.0000, -0.0373),     # nose
    6: (0.0055, 0.0000, -0.0080),     # nose bridge
    9: (0.0015, 0.0000, 0.0161),      # between the brows
    10: (-0.0075, 0.0000, 0.0499),    # forehead top
    33: (-0.0206, -0.0445, -0.0061),  # right eye, outer corner
    61: (-0.0095, -0.0246, -0.0761),  # mouth, right corner
    98: (0.0001, -0.0141, -0.0499),   # right nostril
    133: (-0.0148, -0.0186, -0.0069),  # right eye, inner corner
    151: (-0.0021, 0.0000, 0.0327),   # forehead
    152: (-0.0097, 0.0000, -0.1267),  # chin
    168: (0.0000, 0.0000, 0.0000),    # sellion
    197: (0.0108, 0.0000, -0.0154),   # nose bridge, lower
    234: (-0.0767, -0.0766, -0.0260),  # right cheek edge
    263: (-0.0206, 0.0445, -0.0061),  # left eye, outer corner
    291: (-0.0095, 0.0246, -0.0761),  # mouth, left corner
    327: (0.0001, 0.0141, -0.0499),   # left nostril
    362: (-0.0148, 0.0186, -0.0069),  # left eye, inner corner
    454: (-0.0767, 0.0766, -0.0260),  # left cheek edge
}
_IDS = np.array(sorted(CANONICAL_FACE_M), dtype=np.intp)
_MODEL = np.array([CANONICAL_FACE_M[i] for i in _IDS], dtype=np.float64)
_EYE3 = np.eye(3)


@dataclass
class HeadPoseConfig:
    method: str = "auto"            # 'auto', 'depth' or 'pnp'
    min_depth_points: int = 8       # canonical landmarks with depth needed for the 3D fit
    max_fit_rms_m: float = 0.010    # 3D fit accepted below this RMS residual
    min_pnp_points: int = 6

    def __post_init__(self) -> None:
        if self.method not in ("auto", "depth", "pnp"):
            raise ValueError(f"head pose method must be 'auto', 'depth' or 'pnp', "
                             f"got '{self.method}'")


_DEFAULT_CONFIG = HeadPoseConfig()


def _fit(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """R, t of the rigid fit ``src`` -> ``dst`` (rows matched), and its RMS residual."""
    R, t = weighted_kabsch(src, dst)
    r = src @ R.T + t - dst
    return R, t, float(np.sqrt(np.einsum("ij,ij->", r, r) / len(src)))


def solve_face_pnp(xy: np.ndarray, camera: CameraModel) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """PnP of the canonical landmarks on their 2D mesh pixels (rows as ``_IDS``, NaN =
    missing) -> (R face->camera, sellion position) or None."""
    ok = np.isfinite(xy).all(axis=1)
    if np.count_nonzero(ok) < 4:
        return None
    obj = _MODEL[ok].reshape(-1, 1, 3)
    if camera.distortion_model == "equidistant":
        img = camera.undistort_points(xy[ok]).reshape(-1, 1, 2)
        K, D = _EYE3, None
    else:
        img = xy[ok].astype(np.float64).reshape(-1, 1, 2)
        K, D = camera.K, (camera.D if camera.is_distorted else None)
    try:
        found, rvec, tvec = cv2.solvePnP(obj, img, K, D, flags=cv2.SOLVEPNP_SQPNP)
        if found:
            rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, D, rvec, tvec)
    except cv2.error:
        return None
    if not found or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:
        return None
    R, _ = cv2.Rodrigues(rvec)
    return R, tvec.reshape(3)


def estimate_head_pose(mesh: Keypoints, camera: CameraModel,
                       config: Optional[HeadPoseConfig] = None) -> Optional[HeadPose]:
    """Head pose of a ``face468`` mesh (2D pixels, and 3D when lifted); None when neither
    estimator has enough points. Never raises on data."""
    cfg = config or _DEFAULT_CONFIG
    if mesh.layout != "face468":
        raise ValueError(f"head pose needs a 'face468' mesh, got '{mesh.layout}'")
    model3 = pts3 = np.zeros((0, 3))   # the landmarks with depth: canonical, measured
    if mesh.xyz is not None:
        pts3 = mesh.xyz[_IDS].astype(np.float64)
        ok3 = (mesh.xyz_valid[_IDS] & (mesh.xyz_source[_IDS] == SOURCE_DEPTH)
               & np.isfinite(pts3).all(axis=1))
        model3, pts3 = _MODEL[ok3], pts3[ok3]
    n3 = len(pts3)
    if cfg.method in ("auto", "depth") and n3 >= max(cfg.min_depth_points, 4):
        R, t, rms = _fit(model3, pts3)
        if rms <= cfg.max_fit_rms_m or cfg.method == "depth":
            return HeadPose(position=t, orientation=matrix_to_quat(R), valid=True)
    if cfg.method == "depth":
        return None
    xy = mesh.xy[_IDS].astype(np.float64)
    if np.count_nonzero(np.isfinite(xy).all(axis=1)) < cfg.min_pnp_points:
        return None
    sol = solve_face_pnp(xy, camera)
    if sol is None:
        return None
    R, t = sol
    if n3 >= 3:
        # put the face at its measured depth: scale the PnP solution (the canonical face's size
        # is an average) so the depth-valid landmarks' median depth matches
        pred_z = model3 @ R[2] + t[2]
        scale = median(pts3[:, 2]) / median(pred_z)
        if np.isfinite(scale) and 0.5 < scale < 2.0:
            t = t * scale
    return HeadPose(position=t, orientation=matrix_to_quat(R), valid=True)
