"""Model fill (ROS-free): joints the depth could not measure are placed from the model's own
metric 3D (BlazePose's world landmarks), rigidly fitted to the joints it did measure."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .camera import CameraModel
from .geometry import median, weighted_kabsch
from .lifting_config import LiftingConfig
from .types import SOURCE_DEPTH, SOURCE_MODEL, Keypoints


def model_fill(kps: Keypoints, world: np.ndarray, rays: np.ndarray, cfg: LiftingConfig) -> float:
    """Place the joints without depth (and, with a well-supported fit, the depth joints farther
    than ``cfg.model_outlier_m`` from it) from the model's metric 3D ``world`` (n, 3), rigidly
    fitted to the depth-measured joints, on their own viewing ``rays`` (``SOURCE_MODEL``).
    Returns the fit's RMS residual [m] (NaN without measured joints)."""
    wok = np.all(np.isfinite(world), axis=1)
    valid = kps.xyz_valid & wok & (kps.xyz_source == SOURCE_DEPTH)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return float("nan")
    wts = 1.0 / np.maximum(kps.xyz_sigma[idx].astype(np.float64), 1e-3) ** 2
    R, t, inl = robust_rigid_fit(world[idx], kps.xyz[idx].astype(np.float64), wts,
                                 cfg.model_fit_min_joints, cfg.model_outlier_m)
    pred = world @ R.T + t
    res = np.linalg.norm(pred[idx] - kps.xyz[idx], axis=1)
    rms = float(np.sqrt(np.mean(res[inl] ** 2))) if np.any(inl) else float("nan")
    fill = ~kps.xyz_valid & wok
    if (cfg.model_outlier_m is not None and int(inl.sum()) >= cfg.model_outlier_min_inliers):
        outl = idx[res > cfg.model_outlier_m]
        fill[outl] = True
    fill &= np.all(np.isfinite(pred), axis=1) & (kps.xyz_source != SOURCE_MODEL)
    if not np.any(fill):
        return rms
    sig = np.sqrt((rms if np.isfinite(rms) else cfg.model_sigma_m) ** 2
                  + cfg.model_sigma_m ** 2)
    if inl.sum() < cfg.model_fit_min_joints:
        sig = np.sqrt(sig ** 2 + (2 * cfg.model_sigma_m) ** 2)   # orientation not fitted
    # the 2D keypoint is laterally far better than the fitted model: keep the point on its
    # viewing ray at the model's depth where the ray is known
    on_ray = fill & np.all(np.isfinite(rays), axis=1)
    pred[on_ray] = CameraModel.backproject(rays[on_ray], pred[on_ray, 2])
    kps.xyz[fill] = pred[fill]
    kps.xyz_valid[fill] = True
    kps.xyz_sigma[fill] = sig
    kps.xyz_source[fill] = SOURCE_MODEL
    return rms


def robust_rigid_fit(src: np.ndarray, dst: np.ndarray, w: np.ndarray, min_joints: int,
                     outlier_m: Optional[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid fit model -> measured; with fewer than ``min_joints`` (or a degenerate, e.g.
    collinear, set) a weighted translation with R = I. Points farther than ``outlier_m`` (or 3x
    the median residual, at least 0.05 m) are dropped and the fit repeated (3 rounds).
    Returns R, t and the inlier mask."""
    inl = np.ones(len(src), bool)
    R, t = np.eye(3), np.zeros(3)
    for _ in range(3):
        s, d, ww = src[inl], dst[inl], w[inl]
        spread = np.linalg.svd(s - s.mean(axis=0), compute_uv=False) if len(s) >= 3 else None
        if len(s) >= max(3, min_joints) and spread is not None and spread[1] > 0.05:
            R, t = weighted_kabsch(s, d, ww)
        else:
            R = np.eye(3)
            t = (ww / ww.sum()) @ (d - s)
        res = np.linalg.norm(src @ R.T + t - dst, axis=1)
        thr = max(0.05, 3.0 * median(res[inl]))
        if outlier_m is not None:
            thr = min(thr, outlier_m) if len(src) >= 4 else thr
        new = res <= thr
        if new.sum() < min(len(src), 2) or np.array_equal(new, inl):
            break
        inl = new
    return R, t, inl
