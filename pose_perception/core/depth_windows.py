"""Depth samples on windows around keypoints, and their depth clusters (ROS-free).

The measuring half of :mod:`pose_perception.core.lifting`: a disc of samples is read around each
keypoint (:func:`sample_windows`, one fancy-indexed gather for all keypoints at once) and split
into depth clusters wherever two sorted neighbours are further apart than a depth-dependent gap
(:func:`front_cluster_rows`, vectorised over keypoints: one sort per call, no Python loop per
keypoint). Depth values are metres, NaN = no reading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

GapFn = Callable[[np.ndarray], np.ndarray]


def disc_offsets(n: int) -> np.ndarray:
    """(G, 2) sample offsets on an n x n grid inside the unit disc (centre included)."""
    g = np.linspace(-1.0, 1.0, n)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    return pts[np.hypot(pts[:, 0], pts[:, 1]) <= 1.0 + 1e-9]


def surface_factor(fraction: float, offsets: np.ndarray) -> float:
    """How far (in radii) the median surface under a window of ``fraction`` of a cylinder's
    radius lies in front of its axis: the median of sqrt(1 - d^2) over the window's samples, d
    being a sample's distance across the limb (window orientations averaged)."""
    th = np.linspace(0, np.pi, 12, endpoint=False)
    d = fraction * (offsets[:, 0:1] * np.cos(th) + offsets[:, 1:2] * np.sin(th))
    return float(np.median(np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0))))


def sample_windows(depth: np.ndarray, uv: np.ndarray, radius_px: np.ndarray,
                   offsets: np.ndarray, min_range: float) -> np.ndarray:
    """(N, G) depth samples (float64; NaN = invalid, nearer than ``min_range`` or outside the
    image) on discs of ``radius_px`` (N,) around the depth-image pixels ``uv`` (N, 2); sample
    ``g`` of window ``i`` is the pixel nearest to ``uv[i] + radius_px[i] * offsets[g]``."""
    h, w = depth.shape
    u, v, r = uv[:, 0:1], uv[:, 1:2], radius_px[:, None]
    reach = r * float(np.max(np.abs(offsets))) if offsets.size else r
    with np.errstate(invalid="ignore"):
        # windows wholly inside the image (the usual case) need no per-sample bounds check
        whole = bool(np.all((u >= reach) & (u + reach <= w - 1) & (v >= reach)
                            & (v + reach <= h - 1)))
    ix = np.rint(u + r * offsets[None, :, 0])
    iy = np.rint(v + r * offsets[None, :, 1])
    if whole:
        iy *= w
        iy += ix
        flat = iy.astype(np.intp)
        inside = None
    else:
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        flat = iy * w
        flat += ix
        flat[~inside] = 0
        flat = flat.astype(np.intp)
    src = depth.reshape(-1) if depth.flags.c_contiguous else np.ascontiguousarray(depth).reshape(-1)
    out = src.take(flat).astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((out > min_range) & (out < np.inf))   # NaN, inf, near or negative
    if inside is not None:
        bad |= ~inside
    out[bad] = np.nan
    return out


def front_cluster_1d(values: np.ndarray, gap_fn: GapFn, min_support: float,
                     min_samples: int) -> float:
    """Median of the nearest depth cluster holding >= min_support of the valid values."""
    v = np.sort(values[np.isfinite(values)])
    if v.size < min_samples:
        return float("nan")
    breaks = np.flatnonzero(np.diff(v) > gap_fn(v[:-1])) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [v.size]])
    need = max(min_samples, min_support * v.size)
    for s, e in zip(starts.tolist(), ends.tolist()):
        if e - s >= need:
            return float(0.5 * (v[s + (e - s - 1) // 2] + v[s + (e - s) // 2]))
    return float("nan")


@dataclass
class Clusters:
    """Per row of :func:`front_cluster_rows` (NaN where none)."""

    z: np.ndarray            # median of the chosen (nearest eligible) cluster
    spread: np.ndarray       # its 1.4826 * MAD
    ok: np.ndarray           # (N,) bool: a cluster was chosen
    z_alt: np.ndarray        # the best-supported eligible cluster behind it
    spread_alt: np.ndarray
    frac_alt: np.ndarray     # its share of the row's valid samples (0 where none)


def _run_mad(S: np.ndarray, rows: np.ndarray, start: np.ndarray, count: np.ndarray,
             nvalid: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """1.4826 * median |S[r, start:start+count] - centre| for the given rows of the sorted
    ``S`` (NaN after the ``nvalid`` valid samples; count >= 1)."""
    g = S.shape[1]
    if rows.size == S.shape[0]:   # every row (rows are increasing): no gather
        dev = S - centre[:, None]
    else:
        dev = S[rows]
        dev -= centre[:, None]
    np.abs(dev, out=dev)                          # NaN stays NaN and sorts last
    part = np.flatnonzero((start > 0) | (start + count < nvalid))   # run is not the whole row
    if part.size:
        pos = np.arange(g)
        sub = dev[part]
        sub[(pos < start[part, None]) | (pos >= (start + count)[part, None])] = np.inf
        dev[part] = sub
    dev.sort(axis=1)
    flat = dev.reshape(-1)
    base = np.arange(rows.size) * g
    return 1.4826 * (0.5 * (flat[base + (count - 1) // 2] + flat[base + count // 2]))


def front_cluster_rows(samples: np.ndarray, gap_fn: GapFn, lo: np.ndarray, hi: np.ndarray,
                       min_samples: int, min_support: float,
                       alternatives: bool = True) -> Clusters:
    """Per row of ``samples`` (N, G): the nearest depth cluster with at least
    ``max(min_samples, min_support * valid samples)`` samples whose median lies in [lo, hi]
    (median, 1.4826 * MAD, ok), and the best-supported eligible cluster behind it (median, MAD,
    share of the row's valid samples; NaN / 0 without ``alternatives``, for callers that do not
    use them). Clusters are runs of the sorted row whose neighbours are
    at most ``gap_fn(z)`` apart.

    Vectorised over rows: one sort of the samples, then the clusters are described by their
    boundaries only ((N, C) arrays, C = most clusters in a row, usually 1 to 3)."""
    n, g = samples.shape
    S = np.sort(samples, axis=1)                 # NaN last
    nvalid = g - np.count_nonzero(np.isnan(S), axis=1)
    with np.errstate(invalid="ignore"):
        brk = np.diff(S, axis=1) > gap_fn(S[:, :-1])   # NaN -> False: breaks only among valid
    br_row, br_col = np.nonzero(brk)             # row-major: by row, then position
    per_row = np.bincount(br_row, minlength=n)
    c_max = int(per_row.max()) + 1 if n else 1
    bounds = np.empty((n, c_max + 1), np.intp)   # cluster c = S[r, bounds[c]:bounds[c + 1]]
    bounds[:] = nvalid[:, None]
    bounds[:, 0] = 0
    if br_row.size:
        rank = np.arange(br_row.size) - (np.cumsum(per_row) - per_row)[br_row]
        bounds[br_row, rank + 1] = br_col + 1
    starts = bounds[:, :-1]
    counts = np.diff(bounds, axis=1)             # 0 for the padding clusters
    flat = S.reshape(-1)
    row0 = (np.arange(n) * g)[:, None]
    lo_i = np.clip(starts + (counts - 1) // 2, 0, g - 1)
    lo_i += row0
    hi_i = np.clip(starts + counts // 2, 0, g - 1)
    hi_i += row0
    med = 0.5 * (flat[lo_i] + flat[hi_i])
    need = np.maximum(min_samples, min_support * nvalid)[:, None]
    with np.errstate(invalid="ignore"):
        eligible = (counts > 0) & (counts >= need) & (med >= lo[:, None]) & (med <= hi[:, None])
    ok = eligible.any(axis=1)
    chosen = np.argmax(eligible, axis=1)

    def stats(c: np.ndarray, good: np.ndarray):
        z = np.full(n, np.nan)
        spread = np.full(n, np.nan)
        rows = np.flatnonzero(good)
        if rows.size:
            cc = c[rows]
            z[rows] = med[rows, cc]
            spread[rows] = _run_mad(S, rows, starts[rows, cc], counts[rows, cc], nvalid[rows],
                                    z[rows])
        return z, spread

    z, spread = stats(chosen, ok)
    if not alternatives:
        return Clusters(z, spread, ok, np.full(n, np.nan), np.full(n, np.nan), np.zeros(n))
    later = eligible & (np.arange(c_max)[None, :] > chosen[:, None])
    ok_alt = later.any(axis=1)
    alt = np.argmax(np.where(later, counts, -1), axis=1)
    z_alt, spread_alt = stats(alt, ok_alt)
    frac_alt = np.where(ok_alt, counts[np.arange(n), alt] / np.maximum(nvalid, 1), 0.0)
    return Clusters(z, spread, ok, z_alt, spread_alt, frac_alt)
