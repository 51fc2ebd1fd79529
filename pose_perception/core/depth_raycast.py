"""Where a 3D ray first meets the surface a depth image measured (ROS-free).

The ray is marched in steps of ``step_m`` from ``start_m`` to ``max_m`` along its direction; each
sample is projected into the depth image with the camera model (distortion included) and
compared with the depth there (the median of the valid readings within ``window_px`` pixels:
sensor noise and holes). ``behind = z_sample - depth`` (depth images store z along the optical
axis, REP 118):

- ``behind < -tol``: the sample is in front of the measured surface (free space);
- ``-tol <= behind <= max_behind_m``: the sample reached the surface: a *hit*;
- ``behind > max_behind_m``: the sample passes behind something much nearer to the camera
  (occluded, the camera cannot tell what is there): marching goes on;
- no reading, outside the image or behind the camera: unknown, marching goes on.

A hit is refined by bisection to where ``behind`` changes sign (the measured surface) between
the last sample in front of the surface and the next; a near miss (within ``tol_m`` in front,
never behind) is a hit at its last sample. ``accept(point)`` may reject hits (e.g. on the
pointing person's own arm): marching then continues past them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .camera import CameraModel
from .depth_windows import disc_offsets, sample_windows

_BISECTIONS = 12


@dataclass
class RayHit:
    point: np.ndarray     # (3,) metres on the ray, camera frame
    range_m: float        # distance from the ray's origin
    pixel: np.ndarray     # (2,) depth-image pixel of the hit


def depth_camera_for(depth_m: np.ndarray, camera: CameraModel) -> CameraModel:
    """The model of ``depth_m``'s pixel grid: ``camera`` itself, or ``camera`` scaled when the
    registered depth image has another resolution than the colour image (same field of view)."""
    h, w = depth_m.shape
    return camera if (w, h) == (camera.width, camera.height) else camera.scaled(w, h)


class _DepthLookup:
    """``behind(points)``: z of each point minus the depth under it (NaN: unknown), the depth
    being the median of the valid readings on a disc of ``window_px`` pixels around the point's
    pixel (noise and holes; 0 = the nearest pixel only)."""

    def __init__(self, depth_m: np.ndarray, camera: CameraModel, window_px: float) -> None:
        self.depth, self.camera = depth_m, camera
        self.radius = float(window_px)
        self.offsets = disc_offsets(5) if window_px > 0 else np.zeros((1, 2))

    def behind(self, pts: np.ndarray) -> np.ndarray:
        uv = self.camera.project(pts)
        inside = self.camera.in_image(uv)
        out = np.full(len(pts), np.nan)
        if np.any(inside):
            uvi = uv[inside]
            samples = sample_windows(self.depth, uvi, np.full(len(uvi), self.radius),
                                     self.offsets, 0.0)
            out[inside] = pts[inside, 2] - row_nanmedian(samples)
        return out


def row_nanmedian(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=1)`` of a 2-D array (NaN for rows without a value), without its
    masked-array path: one sort, NaN last, the middle of each row's valid values."""
    s = np.sort(a, axis=1)
    n = a.shape[1] - np.count_nonzero(np.isnan(s), axis=1)
    out = np.full(len(a), np.nan)
    rows = np.flatnonzero(n > 0)
    if rows.size:
        k = n[rows]
        out[rows] = 0.5 * (s[rows, (k - 1) // 2] + s[rows, k // 2])
    return out


def march_ray(origin, direction, depth_m: Optional[np.ndarray], camera: Optional[CameraModel],
              start_m: float, max_m: float, step_m: float = 0.02, tol_m: float = 0.03,
              max_behind_m: float = 0.25, window_px: float = 2.0,
              accept: Optional[Callable[[np.ndarray], bool]] = None) -> Optional[RayHit]:
    """The first accepted hit of the ray ``origin + s * direction`` (``direction`` need not be
    unit; ``s`` in metres once normalised) on the depth image ``depth_m`` (float metres, NaN or
    <= 0 = no reading; registered to ``camera``, possibly at another resolution) for ``s`` in
    ``[start_m, max_m]``, or None (no hit, no usable depth, invalid ray). Never raises on data.
    """
    if depth_m is None or camera is None:
        return None
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or depth.size == 0 or not np.issubdtype(depth.dtype, np.floating):
        return None
    o = np.asarray(origin, np.float64).reshape(3)
    u = np.asarray(direction, np.float64).reshape(3)
    n = float(np.linalg.norm(u))
    if not (np.all(np.isfinite(o)) and np.isfinite(n) and n > 1e-9 and step_m > 0
            and np.isfinite(start_m) and start_m < max_m):
        return None
    u = u / n
    look = _DepthLookup(depth, depth_camera_for(depth, camera), window_px)
    s = np.arange(max(start_m, 0.0), max_m + 0.5 * step_m, step_m)
    f = look.behind(o + s[:, None] * u)
    with np.errstate(invalid="ignore"):
        hits = np.flatnonzero((f >= -tol_m) & (f <= max_behind_m))
    done = -1
    for k in hits:
        if k <= done:
            continue
        # the last free-space sample before the surface: the one before the hit, or the end of
        # the run of samples within ``tol_m`` in front of it that the hit starts
        lo = k - 1
        if f[k] < 0:
            lo = k
            while lo + 1 < len(s) and -tol_m <= f[lo + 1] < 0:
                lo += 1
        done = max(k, lo)
        s_hit = float(s[max(lo, k)])
        if lo >= 0 and lo + 1 < len(s) and f[lo] < 0 <= f[lo + 1] <= max_behind_m:
            a, b = float(s[lo]), float(s[lo + 1])     # bisect the surface crossing
            for _ in range(_BISECTIONS):
                mid = 0.5 * (a + b)
                if look.behind((o + mid * u)[None])[0] >= 0:
                    b = mid
                else:                               # in front, or unknown
                    a = mid
            s_hit = b
        point = o + s_hit * u
        if accept is not None and not accept(point):
            continue
        pixel = look.camera.project(point[None])[0]
        return RayHit(point, s_hit, pixel)
    return None
