"""3-vectors as tuples of Python floats: the vector math of the per-person rules (posture, body
gestures, pointing), one place for it. ROS-free.

numpy costs about a microsecond per call whatever the size; on a 3-vector plain floats are
several times cheaper, and the rules make a few hundred such calls per person and frame.

Rounding: sums, differences, products and means are left to right, as numpy's elementwise
operations and reductions over a few rows do. The dot product (hence norms, units, angles)
rounds each product; numpy's 1-D dot goes through BLAS, which on CPUs with FMA (OpenBLAS on
x86-64) fuses the multiply-adds, so a result can differ from numpy's in the last bit (~1e-16
relative). Here the result is the same on every machine.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

Vec = Tuple[float, float, float]

EPS = 1e-9           # shorter vectors have no direction


def vec(p: Sequence[float]) -> Vec:
    """Any 3-sequence (list, tuple, numpy array) as a tuple of Python floats."""
    x, y, z = p
    return (float(x), float(y), float(z))


def add(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def scale(a: Vec, s: float) -> Vec:
    return (a[0] * s, a[1] * s, a[2] * s)


def neg(a: Vec) -> Vec:
    return (-a[0], -a[1], -a[2])


def dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a: Vec) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def dist(a: Vec, b: Vec) -> float:
    return norm(sub(a, b))


def mean(points: Sequence[Vec]) -> Vec:
    """The mean of one or more points (summed in order, then divided)."""
    x, y, z = points[0]
    for p in points[1:]:
        x, y, z = x + p[0], y + p[1], z + p[2]
    n = len(points)
    return (x / n, y / n, z / n)


def unit(a: Vec) -> Optional[Vec]:
    """``a`` normalised, or None when it is (nearly) zero or not finite."""
    n = norm(a)
    return (a[0] / n, a[1] / n, a[2] / n) if math.isfinite(n) and n > EPS else None


def angle_deg(a: Optional[Vec], b: Optional[Vec]) -> float:
    """Angle between two vectors in degrees (NaN when either is None, zero or not finite)."""
    if a is None or b is None:
        return math.nan
    ua, ub = unit(a), unit(b)
    if ua is None or ub is None:
        return math.nan
    return math.degrees(math.acos(min(1.0, max(-1.0, dot(ua, ub)))))
