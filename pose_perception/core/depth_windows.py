"""Depth samples on windows around keypoints, and their depth clusters (ROS-free).

The measuring half of :mod:`pose_perception.core.lifting`: a disc of samples is read around each
keypoint (:func:`sample_windows`, one fancy-indexed gather for all keypoints at once) and split
into depth clusters wherever two sorted neighbours are further apart than a depth-dependent gap
(:func:`front_cluster_rows`, vectorised over keypoints: one sort per call, no Python loop per
keypoint). Depth values are metres, NaN = no reading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

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
    reach = r * float(np.abs(offsets).max()) if offsets.size else r
    with np.errstate(invalid="ignore"):
        # windows wholly inside the image (the usual case) need no per-sample bounds check
        whole = bool(((u >= reach) & (u + reach <= w - 1) & (v >= reach)
                      & (v + reach <= h - 1)).all())
    ix = r * offsets[:, 0]
    ix += u
    np.rint(ix, out=ix)
    iy = r * offsets[:, 1]
    iy += v
    np.rint(iy, out=iy)
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
        good = (out > min_range) & (out < np.inf)   # not NaN, inf, near or negative
    if inside is not None:
        good &= inside
    np.copyto(out, np.nan, where=~good)
    return out


def front_cluster_1d(values: np.ndarray, gap_fn: GapFn, min_support: float,
                     min_samples: int) -> float:
    """Median of the nearest depth cluster holding >= min_support of the valid values."""
    v = np.sort(values[np.isfinite(values)])
    if v.size < min_samples:
        return float("nan")
    breaks = np.flatnonzero((v[1:] - v[:-1]) > gap_fn(v[:-1])) + 1
    bounds = [0] + breaks.tolist() + [v.size]
    need = max(min_samples, min_support * v.size)
    for s, e in zip(bounds[:-1], bounds[1:]):
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


def _valid_counts(S: np.ndarray) -> np.ndarray:
    """(N,) number of valid (non-NaN) values in each row of the row-sorted ``S``: NaN sorts
    last, so a row ending in NaN has as many as the position of its first NaN."""
    n, g = S.shape
    counts = np.full(n, g)
    if g:
        rows = np.flatnonzero(np.isnan(S[:, -1]))    # the rows with a NaN
        counts[rows] = np.isnan(S[rows]).argmax(axis=1)
    return counts


def _run_mad(S: np.ndarray, rows: Optional[np.ndarray], start: np.ndarray, count: np.ndarray,
             nvalid: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """1.4826 * median |S[r, start:start+count] - centre| for the given rows of the sorted
    ``S`` (None: every row, in order; NaN after the ``nvalid`` valid samples; count >= 1)."""
    g = S.shape[1]
    if rows is None:   # no gather
        dev = S - centre[:, None]
    else:
        dev = S[rows]
        dev -= centre[:, None]
    np.abs(dev, out=dev)                          # NaN stays NaN and sorts last
    end = start + count
    part = np.flatnonzero((start > 0) | (end < nvalid))   # run is not the whole row
    if part.size:   # their samples outside the run (other clusters) sort after it
        pos = np.arange(g)
        sub = dev[part]
        np.putmask(sub, (pos < start[part, None]) | (pos >= end[part, None]), np.inf)
        dev[part] = sub
    dev.sort(axis=1)
    flat = dev.reshape(-1)
    base = np.arange(count.size) * g
    return 1.4826 * (0.5 * (flat[base + (count - 1) // 2] + flat[base + count // 2]))


def _cluster_stats(S: np.ndarray, med: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                   nvalid: np.ndarray, c: np.ndarray, good: np.ndarray):
    """(median, 1.4826 * MAD) of cluster ``c[k, r]`` of each row ``r`` of the sorted ``S``
    where ``good[k, r]``, NaN elsewhere: (K, N) arrays, K cluster choices per row in one pass
    (one gather and one sort)."""
    n = S.shape[0]
    z = np.full(c.shape, np.nan)
    spread = np.full(c.shape, np.nan)
    pick = np.flatnonzero(good)                  # positions in the raveled (K, N) arrays
    if pick.size:
        rows = pick % n
        cc = c.take(pick)
        zp = med[rows, cc]
        np.put(z, pick, zp)
        every = pick.size == n and pick[-1] == n - 1     # exactly the rows 0..N-1
        np.put(spread, pick, _run_mad(S, None if every else rows, starts[rows, cc],
                                      counts[rows, cc], nvalid[rows], zp))
    return z, spread


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
    nvalid = _valid_counts(S)
    flat = S.reshape(-1)
    # neighbours compared along the flat array (contiguous: about twice as fast as row by row);
    # the pairs that straddle two rows get NaN, and NaN compares False: breaks only among valid
    # samples of a row
    step = flat[1:] - flat[:-1]
    if g:
        step[g - 1::g] = np.nan
    with np.errstate(invalid="ignore"):
        brk = np.flatnonzero(step > gap_fn(flat[:-1]))
    br_row, br_col = np.divmod(brk, g)           # row-major: by row, then position
    per_row = np.bincount(br_row, minlength=n)
    c_max = int(per_row.max()) + 1 if n else 1
    bounds = np.empty((n, c_max + 1), np.intp)   # cluster c = S[r, bounds[c]:bounds[c + 1]]
    bounds[:] = nvalid[:, None]
    bounds[:, 0] = 0
    if br_row.size:
        rank = np.arange(br_row.size) - (np.cumsum(per_row) - per_row)[br_row]
        bounds[br_row, rank + 1] = br_col + 1
    starts = bounds[:, :-1]
    counts = bounds[:, 1:] - starts              # 0 for the padding clusters
    row0 = (np.arange(n) * g)[:, None]
    lo_i = starts + (counts - 1) // 2            # the run's middle positions
    hi_i = starts + counts // 2
    for i in (lo_i, hi_i):                       # a padding cluster's may lie outside the row
        np.maximum(i, 0, out=i)
        np.minimum(i, g - 1, out=i)
        i += row0
    med = 0.5 * (flat[lo_i] + flat[hi_i])
    need = np.maximum(min_samples, min_support * nvalid)[:, None]
    with np.errstate(invalid="ignore"):
        eligible = (counts > 0) & (counts >= need) & (med >= lo[:, None]) & (med <= hi[:, None])
    ok = eligible.any(axis=1)
    chosen = eligible.argmax(axis=1)
    if not alternatives:
        (z,), (spread,) = _cluster_stats(S, med, starts, counts, nvalid, chosen[None], ok[None])
        return Clusters(z, spread, ok, *np.full((2, n), np.nan), np.zeros(n))
    later = eligible & (np.arange(c_max)[None, :] > chosen[:, None])
    ok_alt = later.any(axis=1)
    alt = np.where(later, counts, -1).argmax(axis=1)
    (z, z_alt), (spread, spread_alt) = _cluster_stats(S, med, starts, counts, nvalid,
                                                      np.stack([chosen, alt]),
                                                      np.stack([ok, ok_alt]))
    frac_alt = np.where(ok_alt, counts[np.arange(n), alt] / np.maximum(nvalid, 1), 0.0)
    return Clusters(z, spread, ok, z_alt, spread_alt, frac_alt)
