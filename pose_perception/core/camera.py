"""Pinhole camera with lens distortion, built from plain CameraInfo values (ROS-free).

Conventions:
- Pixels are those of the image *as published* (distorted unless the image is rectified), OpenCV
  convention: the centre of the top-left pixel is (0, 0).
- A "ray" is a normalised, undistorted image coordinate ``(x/z, y/z)`` in the camera's optical
  frame (x right, y down, z forward); ``backproject(ray, z)`` gives the 3D point at depth ``z``
  (depth images store z along the optical axis, REP 118, not the range along the ray).
- Distortion models as ROS names them: ``plumb_bob`` (k1, k2, p1, p2, k3), ``rational_polynomial``
  (k1, k2, p1, p2, k3, k4, k5, k6), ``equidistant`` (fisheye k1..k4) and ``none``.
- ``K`` and ``D`` describe the raw (distorted) image. For an already rectified image
  (``image_rect``, whose CameraInfo is the raw one) use :meth:`CameraModel.rectified`, which uses
  ``P`` and no distortion, and whose optical frame is the rectified one (rotated by ``R``).

The ROS layer converts ``sensor_msgs/CameraInfo`` into these plain values
(:meth:`CameraModel.from_camera_info_dict` takes the field names of the message / its YAML).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant", "none")
# coefficient counts accepted per model (OpenCV accepts these lengths for the pinhole models)
_N_COEFFS = {
    "plumb_bob": (4, 5),
    "rational_polynomial": (4, 5, 8),
    "equidistant": (4,),
    "none": (0,),
}
# iterative undistortion: enough iterations to converge for strong (wide-angle) distortion
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)


def _as_matrix(values, shape, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"camera {name} must have {int(np.prod(shape))} values, got {arr.size}")
    return arr.reshape(shape)


class CameraModel:
    """Intrinsics + distortion of one camera image.

    Parameters: ``width``, ``height`` (pixels, > 0), ``K`` (3x3 or 9 values), ``D`` (coefficients
    in ROS/OpenCV order), ``distortion_model`` (one of :data:`DISTORTION_MODELS`; ``""`` is taken
    as ``none`` when ``D`` is empty or all zero), optional ``P`` (3x4) and ``R`` (3x3).
    Raises ``ValueError`` on an uncalibrated (all-zero), non-finite or malformed calibration.
    """

    def __init__(self, width: int, height: int, K, D: Optional[Sequence[float]] = None,
                 distortion_model: str = "plumb_bob", P=None, R=None) -> None:
        if width is None or height is None or int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"camera image size must be positive, got {width}x{height} "
                             "(an uncalibrated CameraInfo has width = height = 0)")
        self.width, self.height = int(width), int(height)
        K = _as_matrix(K, (3, 3), "K")
        if not np.all(np.isfinite(K)):
            raise ValueError(f"camera K contains NaN/inf: {K.ravel().tolist()}")
        if not np.any(K):
            raise ValueError("camera K is all zero: the camera is not calibrated")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"camera focal lengths must be positive, got fx={K[0, 0]}, "
                             f"fy={K[1, 1]}")
        if not np.allclose(K[2], (0.0, 0.0, 1.0)):
            raise ValueError(f"camera K's last row must be (0, 0, 1), got {K[2].tolist()}")
        self.K = K
        D = np.zeros(0) if D is None else np.asarray(D, dtype=np.float64).ravel()
        if not np.all(np.isfinite(D)):
            raise ValueError(f"camera D contains NaN/inf: {D.tolist()}")
        model = (distortion_model or "").strip().lower()
        if model == "" and not np.any(D):
            model = "none"
        if model not in DISTORTION_MODELS:
            raise ValueError(f"unknown distortion model '{distortion_model}'; "
                             f"supported: {', '.join(DISTORTION_MODELS)}")
        if model == "none":
            D = np.zeros(0)
        elif D.size == 0:  # a model named but no coefficients: no distortion
            D = np.zeros(_N_COEFFS[model][-1])
        if D.size not in _N_COEFFS[model]:
            if model != "equidistant" and D.size > 5 and not np.any(D[8:]) and D.size <= 14:
                D = D[:8]  # trailing zeros (e.g. 14 values of which only 8 are used)
            else:
                raise ValueError(f"distortion model '{model}' takes {_N_COEFFS[model]} "
                                 f"coefficients, got {D.size}")
        self.distortion_model = model
        self.D = D
        self.P = None if P is None else _as_matrix(P, (3, 4), "P")
        self.R = None if R is None else _as_matrix(R, (3, 3), "R")
        self._grid_rays: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_camera_info_dict(cls, info: Mapping) -> "CameraModel":
        """From a mapping with CameraInfo's field names (``width``/``image_width``, ``height``/
        ``image_height``, ``K``/``k``, ``D``/``d``, ``distortion_model``, ``P``/``p``, ``R``/``r``),
        e.g. a ``camera_info.yaml`` as written by camera_calibration."""
        def get(*names, default=None):
            for n in names:
                if n in info and info[n] is not None:
                    v = info[n]
                    return v["data"] if isinstance(v, Mapping) and "data" in v else v
            return default
        p = get("P", "p", "projection_matrix")
        r = get("R", "r", "rectification_matrix")
        # an all-zero R/P means "not set" in a CameraInfo message
        p = None if p is None or not np.any(np.asarray(p, float)) else p
        r = None if r is None or not np.any(np.asarray(r, float)) else r
        return cls(get("width", "image_width"), get("height", "image_height"),
                   get("K", "k", "camera_matrix"), get("D", "d", "distortion_coefficients"),
                   get("distortion_model", default="plumb_bob"), P=p, R=r)

    def rectified(self) -> "CameraModel":
        """The model of the *rectified* image of this camera: K = P[:, :3], no distortion."""
        if self.P is None:
            raise ValueError("camera has no P: cannot describe its rectified image")
        return CameraModel(self.width, self.height, self.P[:, :3], None, "none", P=self.P)

    def scaled(self, to_w: int, to_h: int) -> "CameraModel":
        """The same camera (same field of view) imaged at another resolution, e.g. a depth image
        of 320x240 registered to a 640x480 colour image. Pixel-centre convention preserved:
        ``u' = (u + 0.5) * s - 0.5``. Distortion coefficients act on normalised coordinates and
        stay the same."""
        sx, sy = to_w / self.width, to_h / self.height
        S = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        return CameraModel(to_w, to_h, S @ self.K, self.D.copy(), self.distortion_model,
                           P=None if self.P is None else S @ self.P, R=self.R)

    # ------------------------------------------------------------------------- properties
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def is_distorted(self) -> bool:
        return self.distortion_model != "none" and bool(np.any(self.D))

    def same_geometry(self, other: "CameraModel", tol: float = 1e-6) -> bool:
        """True when both models map pixels to rays identically (same size, K, distortion)."""
        if (self.width, self.height) != (other.width, other.height):
            return False
        if not np.allclose(self.K, other.K, atol=tol, rtol=0):
            return False
        if self.is_distorted != other.is_distorted:
            return False
        return (not self.is_distorted or (self.distortion_model == other.distortion_model
                                          and self.D.shape == other.D.shape
                                          and np.allclose(self.D, other.D, atol=tol, rtol=0)))

    def __repr__(self) -> str:
        return (f"CameraModel({self.width}x{self.height}, fx={self.fx:.2f}, fy={self.fy:.2f}, "
                f"cx={self.cx:.2f}, cy={self.cy:.2f}, {self.distortion_model} "
                f"{np.round(self.D, 5).tolist()})")

    # ------------------------------------------------------------------------- geometry
    def in_image(self, xy: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """(N,) bool: finite pixel positions inside the image (pixel centres -0.5..w-0.5)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        with np.errstate(invalid="ignore"):
            return ((xy[:, 0] >= -0.5 + margin) & (xy[:, 0] < self.width - 0.5 - margin)
                    & (xy[:, 1] >= -0.5 + margin) & (xy[:, 1] < self.height - 0.5 - margin))

    def undistort_points(self, xy: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> rays (N, 2) = undistorted normalised coordinates (x/z, y/z).
        Non-finite input gives NaN rows (never raises on data)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if len(xy) and np.isfinite(xy).all():   # the usual case: no rows to pick and put back
            return self._undistort_finite(xy)
        ok = np.isfinite(xy).all(axis=1)
        out = np.full(xy.shape, np.nan)
        if ok.any():
            out[ok] = self._undistort_finite(xy[ok])
        return out

    def _undistort_finite(self, pts: np.ndarray) -> np.ndarray:
        """:meth:`undistort_points` of (N >= 1, 2) finite float64 pixels: a new array."""
        # distorted normalised coordinates (inverse of K, skew included)
        xyn = np.empty(pts.shape)
        xyn[:, 1] = (pts[:, 1] - self.cy) / self.fy
        xyn[:, 0] = (pts[:, 0] - self.cx - self.K[0, 1] * xyn[:, 1]) / self.fx
        if not self.is_distorted:
            return xyn
        src = xyn.reshape(-1, 1, 2)
        eye = np.eye(3)
        if self.distortion_model == "equidistant":
            und = cv2.fisheye.undistortPoints(src, eye, self.D, criteria=_UNDISTORT_CRITERIA)
        else:
            und = cv2.undistortPoints(src, eye, self.D, criteria=_UNDISTORT_CRITERIA)
        return und.reshape(-1, 2).astype(np.float64, copy=False)

    def distort_rays(self, rays: np.ndarray) -> np.ndarray:
        """Rays (N, 2) -> distorted normalised coordinates (N, 2) (the lens model, vectorised)."""
        r = np.asarray(rays, dtype=np.float64).reshape(-1, 2)
        if not self.is_distorted:
            return r.copy()
        x, y = r[:, 0], r[:, 1]
        r2 = x * x + y * y
        d = self.D
        if self.distortion_model == "equidistant":
            rad = np.sqrt(r2)
            th = np.arctan(rad)
            th2 = th * th
            thd = th * (1 + th2 * (d[0] + th2 * (d[1] + th2 * (d[2] + th2 * d[3]))))
            with np.errstate(invalid="ignore", divide="ignore"):
                s = np.where(rad > 1e-12, thd / rad, 1.0)
            return np.stack([x * s, y * s], axis=1)
        k = np.zeros(8)
        k[:d.size] = d
        k1, k2, p1, p2, k3, k4, k5, k6 = k
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return np.stack([xd, yd], axis=1)

    def rays_to_pixels(self, rays: np.ndarray) -> np.ndarray:
        """Rays (N, 2) -> pixels (N, 2), applying the distortion."""
        dn = self.distort_rays(rays)
        u = self.fx * dn[:, 0] + self.K[0, 1] * dn[:, 1] + self.cx
        v = self.fy * dn[:, 1] + self.cy
        return np.stack([u, v], axis=1)

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """3D points (N, 3) in the optical frame -> pixels (N, 2); NaN where z <= 0 or not finite.
        """
        p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = np.all(np.isfinite(p), axis=1) & (p[:, 2] > 1e-9)
            rays = np.where(ok[:, None], p[:, :2] / np.where(ok, p[:, 2], 1.0)[:, None], np.nan)
        return self.rays_to_pixels(rays)

    @staticmethod
    def backproject(rays: np.ndarray, z) -> np.ndarray:
        """Rays (N, 2) (from :meth:`undistort_points`) and depths z (N,) or scalar, metres along
        the optical axis -> 3D points (N, 3)."""
        rays = np.asarray(rays, dtype=np.float64).reshape(-1, 2)
        out = np.empty((rays.shape[0], 3))
        out[:, 2] = z                      # z broadcast to (N,)
        out[:, 0] = rays[:, 0] * out[:, 2]   # column by column: faster than (N, 2) * (N, 1)
        out[:, 1] = rays[:, 1] * out[:, 2]
        return out

    def backproject_pixels(self, xy: np.ndarray, z) -> np.ndarray:
        """Pixels (N, 2) and depths -> 3D points (N, 3) (undistorts first)."""
        return self.backproject(self.undistort_points(xy), z)

    def grid_rays(self) -> np.ndarray:
        """Rays of every pixel centre, (height, width, 2) float32, computed once and cached
        (read-only)."""
        if self._grid_rays is None:
            u, v = np.meshgrid(np.arange(self.width, dtype=np.float64),
                               np.arange(self.height, dtype=np.float64))
            rays = self.undistort_points(np.stack([u.ravel(), v.ravel()], axis=1))
            g = rays.reshape(self.height, self.width, 2).astype(np.float32)
            g.setflags(write=False)
            self._grid_rays = g
        return self._grid_rays
