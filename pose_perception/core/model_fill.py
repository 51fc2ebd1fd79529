"""Model fill (ROS-free): joints the depth could not measure are placed from the model's own
metric 3D (BlazePose's world landmarks), rigidly fitted to the joints it did measure."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .camera import CameraModel
from .geometry import median, row_norms, weighted_kabsch
from .lifting_config import LiftingConfig
from .types import SOURCE_DEPTH, SOURCE_MODEL, Keypoints


def model_fill(kps: Keypoints, world: np.ndarray, rays: np.ndarray, cfg: LiftingConfig) -> float:
    """Place the joints without depth (and, with a well-supported fit, the depth joints farther
    than ``cfg.model_outlier_m`` from it) from the model's metric 3D ``world`` (n, 3), rigidly
    fitted to the depth-measured joints, on their own viewing ``rays`` (``SOURCE_MODEL``).
    Returns the fit's RMS residual [m] (NaN without measured joints)."""
    wok = np.isfinite(world).all(axis=1)
    valid = kps.xyz_valid & wok & (kps.xyz_source == SOURCE_DEPTH)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return float("nan")
    wts = 1.0 / np.maximum(kps.xyz_sigma[idx].astype(np.float64), 1e-3) ** 2
    R, t, inl = robust_rigid_fit(world[idx], kps.xyz[idx].astype(np.float64), wts,
                                 cfg.model_fit_min_joints, cfg.model_outlier_m)
    pred = world @ R.T + t
    res = row_norms(pred[idx] - kps.xyz[idx])
    r2 = res[inl] ** 2
    rms = math.sqrt(r2.sum() / r2.size) if r2.size else float("nan")
    fill = ~kps.xyz_valid & wok
    if (cfg.model_outlier_m is not None and int(inl.sum()) >= cfg.model_outlier_min_inliers):
        outl = idx[res > cfg.model_outlier_m]
        fill[outl] = True
    fill &= np.isfinite(pred).all(axis=1) & (kps.xyz_source != SOURCE_MODEL)
    if not fill.any():
        return rms
    sig = np.sqrt((rms if np.isfinite(rms) else cfg.model_sigma_m) ** 2
                  + cfg.model_sigma_m ** 2)
    if inl.sum() < cfg.model_fit_min_joints:
        sig = np.sqrt(sig ** 2 + (2 * cfg.model_sigma_m) ** 2)   # orientation not fitted
    # the 2D keypoint is laterally far better than the fitted model: keep the point on its
    # viewing ray at the model's depth where the ray is known
    on_ray = fill & np.isfinite(rays).all(axis=1)
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
    s, d, ww = src, dst, w                     # the inliers' rows: all in the first round
    for _ in range(3):
        if len(s) >= max(3, min_joints) and _second_spread_exceeds(s, 0.05):
            R, t = weighted_kabsch(s, d, ww)
        else:
            R = np.eye(3)
            t = (ww / ww.sum()) @ (d - s)
        res = row_norms(src @ R.T + t - dst)
        thr = max(0.05, 3.0 * median(res[inl]))
        if outlier_m is not None:
            thr = min(thr, outlier_m) if len(src) >= 4 else thr
        new = res <= thr
        if np.count_nonzero(new) < min(len(src), 2) or (new == inl).all():
            break
        inl = new
        s, d, ww = src[inl], dst[inl], w[inl]
    return R, t, inl


def _second_spread_exceeds(points: np.ndarray, limit: float) -> bool:
    """Whether the second singular value of the centred (N >= 3, 3) ``points`` exceeds
    ``limit`` (it is about 0 when they are collinear: a rotation about their line is then not
    determined).

    The SVD decides, unless a cheap lower bound clears ``limit`` with a wide margin (the usual
    case for a body; both agree then). The bound: the eigenvalues l1 >= l2 >= l3 of
    G = X^T X (X the centred points) are the squared singular values, and
    c2 = l1 l2 + l1 l3 + l2 l3 <= l2 (2 l1 + l2) <= 2 l2 trace(G), so l2 >= c2 / (2 trace(G)),
    c2 being the sum of G's principal 2x2 minors."""
    x = points - points.sum(axis=0) / len(points)
    (a, b, c), (_, d, e), (_, _, f) = (x.T @ x).tolist()
    trace = a + d + f
    c2 = (a * d - b * b) + (a * f - c * c) + (d * f - e * e)
    if trace > 0.0 and c2 / (2.0 * trace) > 1.01 * limit * limit:
        return True
    return bool(np.linalg.svd(x, compute_uv=False)[1] > limit)
