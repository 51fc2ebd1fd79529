"""``geometry_msgs/Transform`` <-> 4x4 matrices (the math: :mod:`pose_perception.core.geometry`).

A transform ``T_target_source`` maps a point given in ``source`` to ``target`` coordinates, which
is what ``tf2 lookup_transform(target, source, time)`` returns.
"""
from __future__ import annotations

import numpy as np

from ..core.geometry import make_transform, matrix_to_quat


def transform_msg_to_matrix(transform) -> np.ndarray:
    """``geometry_msgs/Transform`` (or a TransformStamped's ``.transform``) -> 4x4."""
    tr, q = transform.translation, transform.rotation
    return make_transform((tr.x, tr.y, tr.z), (q.x, q.y, q.z, q.w))


def matrix_to_transform_msg(T: np.ndarray, msg) -> None:
    """Fill a ``geometry_msgs/Transform`` in place from a 4x4 matrix."""
    q = matrix_to_quat(T[:3, :3])
    msg.translation.x, msg.translation.y, msg.translation.z = (float(v) for v in T[:3, 3])
    msg.rotation.x, msg.rotation.y, msg.rotation.z, msg.rotation.w = (float(v) for v in q)
