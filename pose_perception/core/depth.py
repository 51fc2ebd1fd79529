"""Depth images: conversion to metres and alignment to the colour camera (ROS-free).

Two ways depth relates to the colour image:

(a) *registered* depth (``depth_registered``, RealSense ``aligned_depth_to_color``): depth pixels
    already lie in the colour camera's frame, possibly at another resolution. A colour pixel is
    mapped to the depth image through the two camera models (:func:`colour_to_depth_pixels`);
    no reprojection of the depth image is needed.
(b) *unregistered* depth (the depth sensor's own image and CameraInfo, plus the depth -> colour
    extrinsics from TF): :func:`register_depth` / :class:`DepthRegistration` reproject every
    depth pixel into the colour image with a z-buffer (the nearest surface wins, so occluded
    background never shows through).

Depth values are z along the optical axis in metres (REP 118), NaN where invalid.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .camera import CameraModel

# default metres per unit of each supported encoding
DEPTH_ENCODINGS = {"16UC1": 0.001, "32FC1": 1.0}
_DTYPES = {"16UC1": (np.uint16,), "32FC1": (np.float32, np.float64)}


def depth_to_metres(array: np.ndarray, encoding: str, unit_scale: Optional[float] = None,
                    min_m: float = 0.0, max_m: float = np.inf,
                    out: Optional[np.ndarray] = None) -> np.ndarray:
    """Depth image -> float32 metres (H, W), NaN where there is no valid reading.

    ``16UC1``: unsigned millimetres by default (0 = no reading); ``32FC1``: metres (NaN, inf, 0
    and negative values = no reading). ``unit_scale`` overrides the metres per unit (e.g. 0.0001
    for a sensor publishing 16UC1 in 0.1 mm). Readings outside ``[min_m, max_m]`` become NaN.
    ``out`` may be a preallocated float32 array of the same shape. Any other encoding, or an
    array whose dtype does not match the encoding, raises ``ValueError``.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"unsupported depth encoding '{encoding}': expected one of "
                         f"{sorted(DEPTH_ENCODINGS)} (16UC1 = millimetres, 32FC1 = metres)")
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise ValueError(f"depth image must be 2-D (H, W), got shape {a.shape}")
    if a.dtype.type not in _DTYPES[encoding]:
        raise ValueError(f"depth encoding {encoding} needs dtype "
                         f"{'/'.join(t.__name__ for t in _DTYPES[encoding])}, got {a.dtype}")
    scale = DEPTH_ENCODINGS[encoding] if unit_scale is None else float(unit_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"depth unit_scale must be a positive number, got {unit_scale}")
    if out is None:
        out = np.empty(a.shape, np.float32)
    elif out.shape != a.shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {a.shape}")
    np.multiply(a, scale, out=out, casting="unsafe")
    with np.errstate(invalid="ignore"):
        bad = ~(out > max(min_m, 0.0)) | ~(out <= max_m) | ~np.isfinite(out)  # NaN, inf, <= 0
    out[bad] = np.nan
    return out


def metres_to_16uc1(depth_m: np.ndarray, unit_scale: float = 0.001) -> np.ndarray:
    """Inverse of :func:`depth_to_metres` for ``16UC1`` (NaN -> 0, rounded, clipped)."""
    d = np.asarray(depth_m, dtype=np.float64) / unit_scale
    d = np.where(np.isfinite(d) & (d > 0), np.rint(d), 0)
    return np.clip(d, 0, 65535).astype(np.uint16)


def colour_to_depth_pixels(xy_colour: np.ndarray, colour_cam: CameraModel,
                           depth_cam: Optional[CameraModel]) -> np.ndarray:
    """Registered depth: colour pixels (N, 2) -> pixels of the depth image (N, 2).

    ``depth_cam`` None (or the same geometry) means the depth image is the colour image's grid.
    Otherwise colour pixels are undistorted with the colour model and re-projected with the depth
    image's model (e.g. a 320x240 ``depth_registered`` for a 640x480 colour image).
    """
    xy = np.asarray(xy_colour, dtype=np.float64).reshape(-1, 2)
    if depth_cam is None or depth_cam.same_geometry(colour_cam):
        return xy.copy()
    return depth_cam.rays_to_pixels(colour_cam.undistort_points(xy))


def _as_rt(R, t) -> Tuple[np.ndarray, np.ndarray]:
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (4, 4) and t is None:
        return R[:3, :3], R[:3, 3].copy()
    R = R.reshape(3, 3)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
        raise ValueError("depth->colour transform contains NaN/inf")
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4):
        raise ValueError("depth->colour R is not a rotation matrix")
    return R, t


def _rays_to_pixels_f32(cam: CameraModel, x: np.ndarray, y: np.ndarray):
    """float32 version of ``cam.rays_to_pixels`` for large arrays (x, y are overwritten)."""
    if cam.is_distorted and cam.distortion_model != "equidistant":
        k = np.zeros(8, np.float32)
        k[:cam.D.size] = cam.D
        k1, k2, p1, p2, k3, k4, k5, k6 = (np.float32(c) for c in k)
        xx, yy, xy = x * x, y * y, x * y
        r2 = xx + yy
        radial = r2 * k3
        radial += k2
        radial *= r2
        radial += k1
        radial *= r2
        radial += 1
        if k4 or k5 or k6:
            den = r2 * k6
            den += k5
            den *= r2
            den += k4
            den *= r2
            den += 1
            radial /= den
        xd = x * radial
        xd += (2 * p1) * xy
        xd += p2 * (r2 + 2 * xx)
        yd = y * radial
        yd += p1 * (r2 + 2 * yy)
        yd += (2 * p2) * xy
        x, y = xd, yd
    elif cam.is_distorted:  # equidistant: rare, use the float64 reference path
        dn = cam.distort_rays(np.stack([x, y], axis=1))
        x, y = dn[:, 0].astype(np.float32), dn[:, 1].astype(np.float32)
    u = x * np.float32(cam.fx)
    if cam.K[0, 1]:
        u += np.float32(cam.K[0, 1]) * y
    u += np.float32(cam.cx)
    v = y * np.float32(cam.fy)
    v += np.float32(cam.cy)
    return u, v


class DepthRegistration:
    """Reprojects an unregistered depth image into the colour image (z-buffered).

    ``R``, ``t`` take a point from the depth camera's optical frame to the colour camera's
    (``p_colour = R @ p_depth + t``; a 4x4 matrix may be passed as ``R`` with ``t=None``). Rays of
    the depth pixels are computed once (undistorted with the depth model). Each valid depth pixel
    becomes a 3D point, is transformed, projected with the colour model (distortion included) and
    splatted onto a ``splat x splat`` footprint (``splat`` defaults to the pixel-size ratio of
    the two images, rounded up, so a coarse depth image leaves no holes); where several points
    land on one colour pixel the nearest wins (``np.minimum.at``), which handles occlusion seen
    from the colour camera's viewpoint.
    """

    def __init__(self, depth_cam: CameraModel, colour_cam: CameraModel, R, t=None,
                 splat: Optional[int] = None) -> None:
        self.depth_cam, self.colour_cam = depth_cam, colour_cam
        self.R, self.t = _as_rt(R, t)
        if splat is None:
            ratio = max(colour_cam.fx / depth_cam.fx, colour_cam.fy / depth_cam.fy)
            splat = max(1, int(np.ceil(ratio - 0.05)))
        self.splat = int(splat)
        rays = depth_cam.grid_rays().reshape(-1, 2)
        # direction of each depth pixel's ray in the colour frame: R @ (rx, ry, 1)
        d3 = np.concatenate([rays.astype(np.float64), np.ones((rays.shape[0], 1))], axis=1)
        self._dir = np.ascontiguousarray((d3 @ self.R.T).T.astype(np.float32))  # (3, N)
        self._t32 = self.t.astype(np.float32)
        n = colour_cam.width * colour_cam.height
        self._zbuf = np.empty(n, np.float32)

    def depth_roi_for_colour_box(self, box: Sequence[float],
                                 z_range: Tuple[float, float] = (0.3, 10.0),
                                 margin_px: int = 4) -> Tuple[int, int, int, int]:
        """Depth-image pixel rectangle (x0, y0, x1, y1), exclusive ends, that holds every depth
        pixel able to land in the colour ``box`` (x_min, y_min, x_max, y_max) for scene depths
        in ``z_range``: the box's corners are back-projected at both depths, moved to the depth
        frame and projected there (plus a margin for distortion)."""
        x0, y0, x1, y1 = [float(v) for v in box]
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
        rays = self.colour_cam.undistort_points(corners)
        pts = np.concatenate([self.colour_cam.backproject(rays, z) for z in z_range])
        pd = (pts - self.t) @ self.R  # colour -> depth frame: R^T (p - t)
        uv = self.depth_cam.project(pd)
        if not np.all(np.isfinite(uv)):
            return 0, 0, self.depth_cam.width, self.depth_cam.height
        lo = np.floor(uv.min(axis=0)).astype(int) - margin_px
        hi = np.ceil(uv.max(axis=0)).astype(int) + margin_px + 1
        return (int(np.clip(lo[0], 0, self.depth_cam.width)),
                int(np.clip(lo[1], 0, self.depth_cam.height)),
                int(np.clip(hi[0], 0, self.depth_cam.width)),
                int(np.clip(hi[1], 0, self.depth_cam.height)))

    def __call__(self, depth_m: np.ndarray,
                 depth_rois: Optional[Sequence[Tuple[int, int, int, int]]] = None,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
        """Depth in metres in the depth image (H_d, W_d) -> depth in metres on the colour image's
        pixel grid (H_c, W_c), NaN where nothing was seen. ``depth_rois`` (depth-image
        rectangles, e.g. from :meth:`depth_roi_for_colour_box`) restrict the work to those
        regions; the rest of the output is NaN."""
        dc, cc = self.depth_cam, self.colour_cam
        d = np.asarray(depth_m)
        if not np.issubdtype(d.dtype, np.floating):
            raise ValueError(f"depth must be float metres (got {d.dtype}): convert it with "
                             "depth_to_metres first")
        if d.shape != (dc.height, dc.width):
            raise ValueError(f"depth image is {d.shape[1]}x{d.shape[0]} but its camera model is "
                             f"{dc.width}x{dc.height}")
        flat = d.reshape(-1)
        with np.errstate(invalid="ignore"):
            valid = flat > 0  # NaN compares False
        if depth_rois is not None:
            roi_mask = np.zeros((dc.height, dc.width), bool)
            for (x0, y0, x1, y1) in depth_rois:
                roi_mask[max(0, int(y0)):max(0, int(y1)), max(0, int(x0)):max(0, int(x1))] = True
            valid &= roi_mask.reshape(-1)
        idx = np.flatnonzero(valid)
        z = flat[idx]
        if z.dtype != np.float32 or not np.all(np.isfinite(z)):
            z = z.astype(np.float32)
            ok = np.isfinite(z)
            idx, z = idx[ok], z[ok]
        # p_colour = R @ (rx * z, ry * z, z) + t = z * (R @ (rx, ry, 1)) + t
        t = self._t32
        X = self._dir[0][idx] * z
        X += t[0]
        Y = self._dir[1][idx] * z
        Y += t[1]
        Z = self._dir[2][idx] * z
        Z += t[2]
        front = Z > 1e-6
        if not np.all(front):
            X, Y, Z = X[front], Y[front], Z[front]
        np.divide(X, Z, out=X)
        np.divide(Y, Z, out=Y)
        u, v = _rays_to_pixels_f32(cc, X, Y)
        zbuf = self._zbuf
        zbuf.fill(np.inf)
        s = self.splat
        np.nan_to_num(u, copy=False, nan=-1.0, posinf=-1.0, neginf=-1.0)
        np.nan_to_num(v, copy=False, nan=-1.0, posinf=-1.0, neginf=-1.0)
        np.clip(u, -2.0 * s, cc.width + 2.0 * s, out=u)  # keeps the int cast defined
        np.clip(v, -2.0 * s, cc.height + 2.0 * s, out=v)
        # footprint of s x s colour pixels centred on the projection
        base_u = np.floor(u - (s - 1) / 2.0 + 0.5).astype(np.int64)
        base_v = np.floor(v - (s - 1) / 2.0 + 0.5).astype(np.int64)
        for dv in range(s):
            for du in range(s):
                uu, vv = base_u + du, base_v + dv
                inside = (uu >= 0) & (uu < cc.width) & (vv >= 0) & (vv < cc.height)
                np.minimum.at(zbuf, vv[inside] * cc.width + uu[inside], Z[inside])
        res = zbuf.reshape(cc.height, cc.width)
        if out is None:
            out = np.empty((cc.height, cc.width), np.float32)
        np.copyto(out, res)
        out[~np.isfinite(out)] = np.nan
        return out


def register_depth(depth_m: np.ndarray, depth_cam: CameraModel, colour_cam: CameraModel,
                   R, t=None, depth_rois=None, splat: Optional[int] = None) -> np.ndarray:
    """One-shot form of :class:`DepthRegistration` (keep an instance for a stream: it caches the
    depth camera's rays and the z-buffer)."""
    return DepthRegistration(depth_cam, colour_cam, R, t, splat)(depth_m, depth_rois)
