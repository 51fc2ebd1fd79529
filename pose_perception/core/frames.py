"""Move every 3D field of a :class:`~pose_perception.core.types.FrameResult` into another frame.

The ROS layer looks up the transform (TF) from the camera's optical frame to the target frame
and passes it here as ``(R, t)``, a 4x4 matrix, or a translation + quaternion (x, y, z, w, ROS
order): ``p_target = R @ p_camera + t``. Transformed: keypoints' ``xyz`` (all layouts: body,
hands, face mesh), ``Person.centroid``, ``Person.velocity`` (rotated only), head pose positions
and orientations. ``xyz_sigma`` is isotropic and stays as it is. ``Person.world`` (the model's
own hip-centred coordinates) is not a camera-frame quantity and is left unchanged. NaN (invalid)
points stay NaN.
"""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import numpy as np

from .head_pose import quaternion_xyzw, rotation_from_xyzw
from .types import FrameResult, HeadPose, Keypoints


def rigid_transform(R=None, t=None, matrix=None,
                    quaternion=None) -> Tuple[np.ndarray, np.ndarray]:
    """Normalise the accepted forms to (R 3x3, t 3): ``matrix`` 4x4, or ``R`` 3x3 (or
    ``quaternion`` (x, y, z, w)) with ``t``. Raises ``ValueError`` on a non-rigid or non-finite
    transform."""
    if matrix is not None:
        M = np.asarray(matrix, dtype=np.float64)
        if M.shape != (4, 4):
            raise ValueError(f"transform matrix must be 4x4, got {M.shape}")
        if not np.allclose(M[3], (0, 0, 0, 1)):
            raise ValueError("transform matrix's last row must be (0, 0, 0, 1)")
        R, t = M[:3, :3], M[:3, 3]
    elif quaternion is not None:
        q = np.asarray(quaternion, dtype=np.float64).reshape(4)
        nq = np.linalg.norm(q)
        if not np.isfinite(nq) or nq < 1e-9:
            raise ValueError(f"invalid quaternion {q.tolist()}")
        R = rotation_from_xyzw(q / nq)
    if R is None:
        raise ValueError("give a 4x4 matrix, or R (or a quaternion) and t")
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    t = np.zeros(3) if t is None else np.asarray(t, dtype=np.float64).reshape(3)
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
        raise ValueError("transform contains NaN/inf")
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise ValueError("R is not a proper rotation matrix")
    return R, t


def transform_points(xyz: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N, 3) points -> R p + t (NaN rows stay NaN), same dtype."""
    p = np.asarray(xyz)
    return (p.astype(np.float64) @ R.T + t).astype(p.dtype, copy=False)


def _keypoints(k: Optional[Keypoints], R, t) -> None:
    if k is not None and k.xyz is not None:
        k.xyz = transform_points(k.xyz, R, t)


def _head_pose(h: Optional[HeadPose], R, t) -> None:
    if h is None:
        return
    h.position = R @ np.asarray(h.position, dtype=np.float64) + t
    h.orientation = quaternion_xyzw(R @ rotation_from_xyzw(h.orientation))


def transform_frame(result: FrameResult, R=None, t=None, matrix=None,
                    quaternion=None, inplace: bool = False) -> FrameResult:
    """Apply the rigid transform to every 3D field of ``result`` (a deep copy unless
    ``inplace``) and return it."""
    R, t = rigid_transform(R, t, matrix, quaternion)
    out = result if inplace else copy.deepcopy(result)
    for p in out.persons:
        _keypoints(p.body, R, t)
        if p.centroid is not None:
            p.centroid = R @ np.asarray(p.centroid, dtype=np.float64) + t
        if p.velocity is not None:
            p.velocity = R @ np.asarray(p.velocity, dtype=np.float64)
        for h in p.hands:
            _keypoints(h.keypoints, R, t)
        if p.face is not None:
            _keypoints(p.face.mesh, R, t)
            _head_pose(p.face.head_pose, R, t)
    for f in out.faces_without_body:
        _keypoints(f.mesh, R, t)
        _head_pose(f.head_pose, R, t)
    return out
