"""Depth windows and their clusters (the vectorised measuring core of lifting) against plain
per-row reference implementations, on random rows with gaps, NaNs, bands and image borders."""
import numpy as np
import pytest

from pose_perception.core.depth_windows import (disc_offsets, front_cluster_1d,
                                                front_cluster_rows, sample_windows)


def gap_fn(z):
    return np.maximum(0.05, 3.0 * 0.002 * z * z)


def reference_row(row, lo, hi, min_samples, min_support):
    """One row, the obvious way: sort the valid samples, cut at gaps, scan clusters."""
    v = np.sort(row[np.isfinite(row)])
    out = dict(z=np.nan, spread=np.nan, ok=False, z_alt=np.nan, spread_alt=np.nan, frac_alt=0.0)
    if v.size == 0:
        return out
    cuts = np.flatnonzero(np.diff(v) > gap_fn(v[:-1])) + 1
    clusters = np.split(v, cuts)
    need = max(min_samples, min_support * v.size)
    eligible = [c.size >= need and lo <= np.median(c) <= hi for c in clusters]
    if not any(eligible):
        return out
    first = eligible.index(True)
    c = clusters[first]
    out.update(z=np.median(c), spread=1.4826 * np.median(np.abs(c - np.median(c))), ok=True)
    later = [(clusters[i].size, -i) for i in range(first + 1, len(clusters)) if eligible[i]]
    if later:
        c = clusters[-max(later)[1]]
        out.update(z_alt=np.median(c), spread_alt=1.4826 * np.median(np.abs(c - np.median(c))),
                   frac_alt=c.size / v.size)
    return out


def random_rows(rng, n, g):
    """Rows mixing 1-3 surfaces (some closer than the gap), NaNs and exact repeats."""
    rows = np.full((n, g), np.nan)
    for i in range(n):
        k = rng.integers(1, 4)
        centres = np.sort(rng.uniform(0.4, 6.0, k))
        if rng.random() < 0.3 and k > 1:
            centres[1] = centres[0] + rng.uniform(0.02, 0.08)   # near the gap threshold
        pick = rng.integers(0, k, g)
        rows[i] = centres[pick] + rng.normal(0, 0.004 * centres[pick] ** 2, g)
        if rng.random() < 0.2:
            rows[i, : g // 3] = np.round(rows[i, : g // 3], 2)   # ties, as 16-bit depth has
        rows[i, rng.random(g) < rng.uniform(0, 0.8)] = np.nan
    return rows


@pytest.mark.parametrize("seed", range(4))
def test_front_cluster_rows_matches_the_per_row_reference(seed):
    rng = np.random.default_rng(seed)
    n, g = 300, 29
    rows = random_rows(rng, n, g)
    lo = rng.uniform(0.0, 3.0, n)
    hi = lo + rng.uniform(0.3, 4.0, n)
    cl = front_cluster_rows(rows, gap_fn, lo, hi, 3, 0.15)
    for i in range(n):
        ref = reference_row(rows[i], lo[i], hi[i], 3, 0.15)
        assert cl.ok[i] == ref["ok"], i
        for key in ("z", "spread", "z_alt", "spread_alt", "frac_alt"):
            np.testing.assert_allclose(getattr(cl, key)[i], ref[key], rtol=0, atol=1e-12,
                                       err_msg=f"row {i} {key}")
    assert cl.ok.sum() > n // 3 and np.isfinite(cl.z_alt).sum() > 10   # the test saw both


def test_front_cluster_rows_edge_cases():
    empty = front_cluster_rows(np.zeros((0, 5)), gap_fn, np.zeros(0), np.zeros(0), 3, 0.15)
    assert empty.z.shape == (0,) and empty.ok.shape == (0,)
    rows = np.array([[np.nan] * 5, [1.0, 1.0, 1.0, np.nan, np.nan], [1.0, 1.0, 2.0, 2.0, 2.0]])
    cl = front_cluster_rows(rows, gap_fn, np.zeros(3), np.full(3, 10.0), 3, 0.15)
    assert list(cl.ok) == [False, True, True]
    assert cl.z[1] == 1.0 and cl.spread[1] == 0.0
    # the nearer cluster has too few samples (2 < min_samples): the farther one is chosen
    assert cl.z[2] == 2.0 and np.isnan(cl.z_alt[2]) and cl.frac_alt[2] == 0.0


def test_front_cluster_1d_takes_the_nearest_supported_cluster():
    v = np.array([0.5, 2.0, 2.01, 2.02, 2.03, 3.0, 3.0, 3.0, 3.0, 3.0, np.nan])
    assert front_cluster_1d(v, gap_fn, 0.2, 3) == pytest.approx(2.015)
    assert np.isnan(front_cluster_1d(v, gap_fn, 0.6, 3))
    assert np.isnan(front_cluster_1d(np.array([np.nan, 1.0]), gap_fn, 0.2, 3))


def reference_samples(depth, uv, radius, offsets, min_range):
    h, w = depth.shape
    out = np.full((len(uv), len(offsets)), np.nan)
    for i, ((u, v), r) in enumerate(zip(uv, radius)):
        for k, (ox, oy) in enumerate(offsets):
            x, y = np.rint(u + r * ox), np.rint(v + r * oy)
            if 0 <= x < w and 0 <= y < h:
                d = float(depth[int(y), int(x)])
                out[i, k] = d if np.isfinite(d) and d > min_range else np.nan
    return out


@pytest.mark.parametrize("where", ["inside", "border", "outside", "nan"])
def test_sample_windows_matches_the_per_sample_reference(where):
    rng = np.random.default_rng(5)
    h, w = 48, 64
    depth = rng.uniform(0.05, 4.0, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.1] = np.nan
    depth[rng.random((h, w)) < 0.05] = np.inf
    depth[rng.random((h, w)) < 0.05] = -1.0
    offsets = disc_offsets(7)
    n = 40
    radius = rng.uniform(1.0, 6.0, n)
    # "inside": every window inside the image (the fast path); "border": one window just
    # crosses the right border; "outside": windows across the borders and wholly outside
    uv = np.stack([rng.uniform(7, w - 8, n), rng.uniform(7, h - 8, n)], axis=1)
    if where == "border":
        uv[1], radius[1] = (w - 2.0, 20.0), 3.0
    elif where in ("outside", "nan"):
        uv = np.stack([rng.uniform(-10, w + 10, n), rng.uniform(-10, h + 10, n)], axis=1)
    if where == "nan":
        uv[0] = np.nan
    got = sample_windows(depth, uv, radius, offsets, 0.1)
    ref = reference_samples(depth, uv, radius, offsets, 0.1)
    np.testing.assert_array_equal(got, ref)
    assert np.isfinite(got).any()
    # a non-contiguous view of the same image reads the same
    wide = np.zeros((h, 2 * w), np.float32)
    wide[:, ::2] = depth
    np.testing.assert_array_equal(sample_windows(wide[:, ::2], uv, radius, offsets, 0.1), got)
