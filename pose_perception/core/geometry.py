"""Geometry used across the package, each function once: point sets (which points are finite,
their median, per axis or of all values), axis-aligned boxes (IoU, coverage, non-maximum
suppression), quaternions, rigid transforms and the weighted rigid (Kabsch) fit.

Conventions: boxes are ``x0, y0, x1, y1`` in pixels; quaternions are (x, y, z, w), ROS order
(transforms3d's are w, x, y, z: converted here); a 4x4 transform ``T_target_source`` maps a point
given in ``source`` to ``target`` coordinates, which is what tf2's
``lookup_transform(target, source, time)`` returns. NaN points stay NaN.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
from transforms3d.euler import euler2quat
from transforms3d.quaternions import mat2quat, qmult, quat2mat


# ------------------------------------------------------------------------------- point sets
def finite_rows(points: np.ndarray) -> np.ndarray:
    """(N,) bool: the rows of (N, K >= 1) ``points`` that are finite throughout; the same as
    ``np.isfinite(points).all(axis=1)``, a column at a time (a reduction over a short axis costs
    a few microseconds more)."""
    f = np.isfinite(points)
    ok = f[:, 0].copy()
    for k in range(1, f.shape[1]):
        ok &= f[:, k]
    return ok


def _middle(s: np.ndarray):
    """The median of values sorted along axis 0: the mean of the two middle ones for an even
    count (as ``np.median``)."""
    n = len(s)
    return 0.5 * (s[(n - 1) // 2] + s[n // 2])


def point_median(points: np.ndarray) -> np.ndarray:
    """Per-axis median of (N >= 1, K) points without NaN: ``np.median(points, axis=0)``, the
    same values without its per-call overhead (~2 us instead of ~11 us)."""
    return _middle(np.sort(points, axis=0))


def median(values: np.ndarray) -> float:
    """``np.median`` of a small array's values (NaN if one is NaN or there are none), without
    its per-call overhead."""
    v = np.sort(values, axis=None)
    if v.size == 0 or v[-1] != v[-1]:          # NaN sorts last
        return float("nan")
    return float(_middle(v))


# ------------------------------------------------------------------------------------ boxes
def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of (..., 4) boxes (0 for inverted ones)."""
    b = np.asarray(boxes)
    return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection areas of boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, 0)          # np.clip's values (NaN, -0.0 alike) for less
    return wh[..., 0] * wh[..., 1]


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of boxes ``a`` (N, 4) with boxes ``b`` (M, 4) (0 for empty unions)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M,) IoU of one box with each of (M, 4) boxes: one row of :func:`box_iou_matrix`."""
    return box_iou_matrix(box, boxes)[0]


def covered_fraction(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M,) fraction of ``box``'s area inside each of (M, 4) ``boxes``."""
    return box_intersection(box, boxes)[0] / max(float(box_area(np.asarray(box, np.float64))),
                                                 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_detections: Optional[int] = None) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first: each kept box removes
    the remaining ones overlapping it by IoU > ``iou_threshold``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep: List[int] = []
    while order.size and (max_detections is None or len(keep) < max_detections):
        top, rest = int(order[0]), order[1:]
        keep.append(top)
        order = rest[box_iou(b[top], b[rest]) <= iou_threshold]
    return np.asarray(keep, np.int64)


# ------------------------------------------------------------------------------ rotations
def quat_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Quaternion (x, y, z, w) -> 3x3 rotation matrix (the quaternion is normalised; a zero or
    non-finite quaternion raises ``ValueError``)."""
    x, y, z, w = np.asarray(q, dtype=np.float64).reshape(4)
    n = float(np.sqrt(x * x + y * y + z * z + w * w))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"invalid rotation quaternion (x, y, z, w) = {tuple(np.ravel(q))}")
    return quat2mat([w / n, x / n, y / n, z / n])


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion (x, y, z, w) with w >= 0.

    Shepperd's method (from the largest of w, x, y, z: well conditioned) on Python floats for
    a proper rotation (det +1, orthonormal to rounding); anything else goes through
    transforms3d's eigen-solution, which also finds the nearest rotation's quaternion."""
    M = np.asarray(R, dtype=np.float64)
    (a, b, c), (d, e, f), (g, h, i) = M.tolist()
    if abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g) - 1.0) > 1e-6:
        w, x, y, z = mat2quat(M)
    else:
        tr = a + e + i
        if tr > 0.0:
            s = 2.0 * math.sqrt(tr + 1.0)
            w, x, y, z = 0.25 * s, (h - f) / s, (c - g) / s, (d - b) / s
        elif a >= e and a >= i:
            s = 2.0 * math.sqrt(max(1.0 + a - e - i, 0.0))
            w, x, y, z = (h - f) / s, 0.25 * s, (b + d) / s, (c + g) / s
        elif e >= i:
            s = 2.0 * math.sqrt(max(1.0 + e - a - i, 0.0))
            w, x, y, z = (c - g) / s, (b + d) / s, 0.25 * s, (f + h) / s
        else:
            s = 2.0 * math.sqrt(max(1.0 + i - a - e, 0.0))
            w, x, y, z = (d - b) / s, (c + g) / s, (f + h) / s, 0.25 * s
        n = math.sqrt(w * w + x * x + y * y + z * z)
        w, x, y, z = w / n, x / n, y / n, z / n
    q = np.array([x, y, z, w])
    return q if w >= 0 else -q


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of R = Rz(yaw) Ry(pitch) Rx(roll) (ROS roll, pitch, yaw about the
    fixed x, y, z axes)."""
    w, x, y, z = euler2quat(roll, pitch, yaw, "sxyz")
    return np.array([x, y, z, w])


def quat_multiply(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Hamilton product a * b of quaternions (x, y, z, w): rotate by b, then by a."""
    w, x, y, z = qmult([a[3], a[0], a[1], a[2]], [b[3], b[0], b[1], b[2]])
    return np.array([x, y, z, w])


# ------------------------------------------------------------------------ rigid transforms
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
        R = quat_to_matrix(quaternion)
    if R is None:
        raise ValueError("give a 4x4 matrix, or R (or a quaternion) and t")
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    t = np.zeros(3) if t is None else np.asarray(t, dtype=np.float64).reshape(3)
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
        raise ValueError("transform contains NaN/inf")
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise ValueError("R is not a proper rotation matrix")
    return R, t


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


def is_identity(T: np.ndarray, tol: float = 1e-12) -> bool:
    return bool(np.allclose(T, np.eye(4), atol=tol, rtol=0))


def transform_points(xyz: np.ndarray, R: np.ndarray, t) -> np.ndarray:
    """(N, 3) points -> R p + t, computed in float64 and returned in the input's float dtype."""
    p = np.asarray(xyz)
    out = p.astype(np.float64).reshape(-1, 3) @ np.asarray(R).T + t
    return out.astype(p.dtype, copy=False) if p.dtype.kind == "f" else out


def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) float64 points transformed by a 4x4 ``T``."""
    return transform_points(np.asarray(points, dtype=np.float64), T[:3, :3], T[:3, 3])


def rotate(T: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(N, 3) free vectors (e.g. velocities) rotated by a 4x4 ``T``: no translation."""
    return transform_points(np.asarray(vectors, dtype=np.float64), T[:3, :3], 0.0)


def row_norms(v: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row of (N, K) ``v``: ``np.linalg.norm(v, axis=1)``, the same
    values (the same sum of squares) without its per-call overhead."""
    return np.sqrt(np.add.reduce(v * v, axis=1))


def vector_norm(v: np.ndarray) -> float:
    """``np.linalg.norm`` of a 1-D vector (``sqrt(v.dot(v))``, in ``v``'s precision), without
    its per-call checks."""
    r = np.ravel(v)
    return float(np.sqrt(r.dot(r)))


# ------------------------------------------------------------------------------ rigid fit
def _det3(m: np.ndarray) -> float:
    """Determinant of a 3x3 matrix (cofactor expansion on Python floats: no LAPACK call)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def weighted_kabsch(src: np.ndarray, dst: np.ndarray, w: Optional[np.ndarray] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """R, t minimising sum w |R src + t - dst|^2 over matched rows (equal weights by default);
    a proper rotation (a reflection is turned into the nearest rotation)."""
    w = np.full(len(src), 1.0 / len(src)) if w is None else w / w.sum()
    cs, cd = w @ src, w @ dst
    H = ((src - cs) * w[:, None]).T @ (dst - cd)
    U, _, Vt = np.linalg.svd(H)
    V = Vt.T.copy()
    # V U^T is orthogonal, its determinant +-1: -1 is a reflection, undone by flipping the
    # axis of the smallest singular value (R = V diag(1, 1, -1) U^T)
    if _det3(Vt.T @ U.T) < 0.0:
        V[:, 2] *= -1.0
    R = V @ U.T
    return R, cd - R @ cs
