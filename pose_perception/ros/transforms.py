"""Rigid transforms as 4x4 matrices, and their ``geometry_msgs`` forms.

Plain numpy except for the two message helpers; quaternions are (x, y, z, w), ROS order. A
transform ``T_target_source`` maps a point given in ``source`` to ``target`` coordinates, which is
what ``tf2 lookup_transform(target, source, time)`` returns.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def quat_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> 3x3 rotation matrix (the quaternion is normalised;
    a zero or non-finite quaternion raises ``ValueError``)."""
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"invalid rotation quaternion (x, y, z, w) = {tuple(q)}")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion (x, y, z, w) with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def make_transform(translation: Sequence[float], quaternion: Sequence[float]) -> np.ndarray:
    """4x4 homogeneous transform from a translation (x, y, z) and a quaternion (x, y, z, w)."""
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(quaternion)
    T[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return T


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform."""
    Ti = np.eye(4)
    R = T[:3, :3]
    Ti[:3, :3] = R.T
    Ti[:3, 3] = -R.T @ T[:3, 3]
    return Ti


def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Transform (N, 3) points (NaN rows stay NaN)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return p @ T[:3, :3].T + T[:3, 3]


def rotate(T: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Rotate (N, 3) free vectors (e.g. velocities): no translation."""
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    return v @ T[:3, :3].T


def is_identity(T: np.ndarray, tol: float = 1e-12) -> bool:
    return bool(np.allclose(T, np.eye(4), atol=tol, rtol=0))


# ----------------------------------------------------------------------- message helpers
def transform_msg_to_matrix(transform) -> np.ndarray:
    """``geometry_msgs/Transform`` (or a TransformStamped's ``.transform``) -> 4x4."""
    tr, q = transform.translation, transform.rotation
    return make_transform((tr.x, tr.y, tr.z), (q.x, q.y, q.z, q.w))


def matrix_to_transform_msg(T: np.ndarray, msg) -> None:
    """Fill a ``geometry_msgs/Transform`` in place from a 4x4 matrix."""
    q = matrix_to_quat(T[:3, :3])
    msg.translation.x, msg.translation.y, msg.translation.z = (float(v) for v in T[:3, 3])
    msg.rotation.x, msg.rotation.y, msg.rotation.z, msg.rotation.w = (float(v) for v in q)
