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
from typing import Optional

import numpy as np

from .geometry import matrix_to_quat, quat_to_matrix, rigid_transform, transform_points
from .types import FrameResult, HeadPose, Keypoints


def _keypoints(k: Optional[Keypoints], R, t) -> None:
    if k is not None and k.xyz is not None:
        k.xyz = transform_points(k.xyz, R, t)


def _head_pose(h: Optional[HeadPose], R, t) -> None:
    if h is None:
        return
    h.position = R @ np.asarray(h.position, dtype=np.float64) + t
    h.orientation = matrix_to_quat(R @ quat_to_matrix(h.orientation))


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
