"""Joints hidden behind another body part, and bone-length checks (ROS-free).

Step 6 of :mod:`pose_perception.core.lifting`, for layouts with a :class:`SkeletonSpec`
(``blazepose33``, ``coco17``; others can be registered in ``LiftingConfig.skeletons``).

A measured joint whose viewing ray (widened by its sampling window) meets another body part's
capsule no nearer than the measured surface may be hidden by it (a hand behind the back, a heel
behind the foot); so may any joint with a low score. Such a *suspect* takes the surface behind
the occluder when that dominates its window; else it keeps its depth if its bone to a trusted
neighbour has the expected length (mirror bone as measured, else the model's bone scaled, else a
stature ratio; a 3D bone may look longer by noise but never shorter); otherwise it moves along
its ray to the nearest point at that bone length behind the occluder (``SOURCE_MODEL``, sigma
from the bone's uncertainty). Low-score suspects that cannot be checked become invalid. Finally
a limb joint whose bone is grossly off (measured on a wall close behind the person, say) is
made invalid.

Speed: all capsules are intersected with all rays in one batched call
(:func:`ray_capsule_range` with (K, 3) ends), and each skeleton's index tables are built once
(:func:`skeleton_tables`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

import numpy as np

from .geometry import median, row_norms
from .types import SOURCE_MODEL, Keypoints

if TYPE_CHECKING:   # pragma: no cover
    from .lifting import LiftingConfig


@dataclass(frozen=True)
class SkeletonSpec:
    """Bones of a layout for occlusion reasoning.

    ``bones``: (a, b, length / body height, index of the mirror bone or -1, radius m); each bone
    is also a body part that can hide joints behind it. ``parts``: extra occluding parts
    ((joints averaged for end a), (... end b), radius m), e.g. the trunk's centre line or the
    head (a sphere when both ends are the same). ``derived``: joints defined as the mean of
    others (e.g. a pelvis defined as the hip midpoint), recomputed from them after lifting."""

    bones: Tuple[Tuple[int, int, float, int, float], ...]
    parts: Tuple[Tuple[Tuple[int, ...], Tuple[int, ...], float], ...] = ()
    derived: Tuple[Tuple[int, Tuple[int, ...]], ...] = ()   # (joint, joints it is the mean of)
    face: Tuple[int, ...] = ()           # face surface points (nose, eyes, mouth)
    ears: Tuple[int, ...] = ()           # (left, right): the head's centre line


def _limb_bones(sh_l, sh_r, hip_l, hip_r, el_l, el_r, wr_l, wr_r, kn_l, kn_r, an_l, an_r):
    # length ratios: joint-centre segment lengths / stature (Winter, Drillis & Contini)
    return (
        (sh_l, sh_r, 0.20, -1, 0.06), (hip_l, hip_r, 0.13, -1, 0.09),
        (sh_l, hip_l, 0.29, 3, 0.08), (sh_r, hip_r, 0.29, 2, 0.08),
        (sh_l, el_l, 0.17, 5, 0.045), (sh_r, el_r, 0.17, 4, 0.045),
        (el_l, wr_l, 0.15, 7, 0.035), (el_r, wr_r, 0.15, 6, 0.035),
        (hip_l, kn_l, 0.245, 9, 0.07), (hip_r, kn_r, 0.245, 8, 0.07),
        (kn_l, an_l, 0.25, 11, 0.045), (kn_r, an_r, 0.25, 10, 0.045),
    )


SKELETONS = {
    "blazepose33": SkeletonSpec(
        _limb_bones(11, 12, 23, 24, 13, 14, 15, 16, 25, 26, 27, 28) + (
            # hand: wrist to the pinky and index knuckles and the thumb's second joint; foot:
            # ankle to heel and to the toe tip (foot length ~0.15 stature)
            (15, 17, 0.047, 13, 0.02), (16, 18, 0.047, 12, 0.02),
            (15, 19, 0.055, 15, 0.02), (16, 20, 0.055, 14, 0.02),
            (15, 21, 0.038, 17, 0.015), (16, 22, 0.038, 16, 0.015),
            (27, 29, 0.04, 19, 0.03), (28, 30, 0.04, 18, 0.03),
            (27, 31, 0.12, 21, 0.03), (28, 32, 0.12, 20, 0.03)),
        parts=(((11, 12), (23, 24), 0.11), ((7, 8), (7, 8), 0.09)),
        face=(0, 1, 2, 3, 4, 5, 6, 9, 10), ears=(7, 8)),
    "coco17": SkeletonSpec(
        _limb_bones(5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
        parts=(((5, 6), (11, 12), 0.11), ((3, 4), (3, 4), 0.09)),
        face=(0, 1, 2), ears=(3, 4)),
}


@dataclass
class Measured:
    """Per-joint depth-window results kept for the occlusion reasoning (NaN = none)."""

    z: np.ndarray          # surface depth of the chosen (nearest) cluster
    spread: np.ndarray
    z_alt: np.ndarray      # the best-supported cluster behind it
    spread_alt: np.ndarray
    frac_alt: np.ndarray   # its share of the window's valid samples
    win_m: np.ndarray      # window radius (m)


@dataclass(frozen=True)
class SkeletonTables:
    """Index arrays of a :class:`SkeletonSpec` for ``n`` joints (built once per spec)."""

    bone_a: np.ndarray            # (B,) intp
    bone_b: np.ndarray
    bone_list: Tuple[Tuple[int, int], ...]   # (a, b) per bone, as Python ints
    ratio: np.ndarray             # (B,) length / stature
    mirror: np.ndarray            # (B,) intp, -1 = none
    end_a: np.ndarray             # (K, n) weights: capsule k's end a = end_a[k] @ P
    end_b: np.ndarray
    radius: np.ndarray            # (K,) capsule radii
    members: np.ndarray           # (K, n) bool: joints defining capsule k
    in_skel: np.ndarray           # (n,) bool: joints on a bone
    adjacent: Tuple[Tuple[Tuple[int, int], ...], ...]   # per joint: (bone, other end)


@lru_cache(maxsize=32)
def skeleton_tables(spec: SkeletonSpec, n: int) -> SkeletonTables:
    """Index tables of ``spec`` for a layout of ``n`` joints (cached)."""
    bones = spec.bones
    a = np.array([b[0] for b in bones], np.intp)
    b = np.array([b[1] for b in bones], np.intp)
    parts = [((i,), (j,), r) for i, j, _, _, r in bones] + list(spec.parts)
    k = len(parts)
    end_a, end_b = np.zeros((k, n)), np.zeros((k, n))
    members = np.zeros((k, n), bool)
    for row, (ia, ib, _) in enumerate(parts):
        for end, ids in ((end_a, ia), (end_b, ib)):
            for j in ids:
                end[row, j] += 1.0 / len(ids)
        members[row, list(set(ia) | set(ib))] = True
    in_skel = np.zeros(n, bool)
    in_skel[a] = True
    in_skel[b] = True
    adjacent: List[List[Tuple[int, int]]] = [[] for _ in range(n)]
    for kk, (i, j, *_) in enumerate(bones):
        adjacent[i].append((kk, j))
        if j != i:
            adjacent[j].append((kk, i))
    for t in (a, b, end_a, end_b, members, in_skel):
        t.setflags(write=False)
    return SkeletonTables(a, b, tuple((int(x[0]), int(x[1])) for x in bones),
                          np.array([x[2] for x in bones]),
                          np.array([x[3] for x in bones], np.intp), end_a, end_b,
                          np.array([p[2] for p in parts], np.float64), members, in_skel,
                          tuple(tuple(x) for x in adjacent))


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("...j,...j->...", x, y)


def _capsule_ranges(D: np.ndarray, A: np.ndarray, B: np.ndarray, r, entry: bool = True,
                    exit: bool = False):
    """Element-wise (broadcasting) ranges along unit rays ``D`` (..., 3) from the camera centre
    where they enter (first hit; inf on a miss or behind the camera) and leave (-inf on a
    miss) capsules with ends ``A``, ``B`` (..., 3) and radii ``r``."""
    ba = B - A
    baba, baoa, oaoa = _dot(ba, ba), -_dot(ba, A), _dot(A, A)
    bard, rdoa = _dot(D, ba), -_dot(D, A)
    rr = np.asarray(r, np.float64) ** 2
    t_in = t_out = None
    # a miss (negative discriminant) makes the square root NaN, which fails every test below
    with np.errstate(invalid="ignore", divide="ignore"):
        qa = baba - bard * bard
        qb = baba * rdoa - baoa * bard
        qc = baba * oaoa - baoa * baoa - rr * baba
        good = (qa > 1e-12) & (baba > 1e-12)   # cylinder body (not a sphere)
        sq = np.sqrt(qb * qb - qa * qc)
        if entry:
            tb = (-qb - sq) / qa
            y = baoa + tb * bard
            t_in = np.where(good & (y > 0) & (y < baba) & (tb > 0), tb, np.inf)
        if exit:
            tf = (-qb + sq) / qa
            yf = baoa + tf * bard
            t_out = np.where(good & (yf > 0) & (yf < baba) & (tf > 0), tf, -np.inf)
        for sb, cc in ((rdoa, oaoa), (-_dot(D, B), _dot(B, B))):   # end spheres
            sq = np.sqrt(sb * sb - (cc - rr))
            if entry:
                ts = -sb - sq
                t_in = np.minimum(t_in, np.where(ts > 0, ts, np.inf))
            if exit:
                te = -sb + sq
                t_out = np.maximum(t_out, np.where(te > 0, te, -np.inf))
    return t_in, t_out


def ray_capsule_range(dirs: np.ndarray, a: np.ndarray, b: np.ndarray, r,
                      exit_range: bool = False):
    """Range along unit rays ``dirs`` (M, 3) from the camera centre to the first hit of a
    capsule (segment a-b, radius ``r``); inf where the ray misses (or the hit is behind the
    camera). With ``exit_range`` also the range where the ray leaves the capsule (-inf on a
    miss): returns (t_in, t_out).

    One capsule: ``a``, ``b`` (3,), ``r`` scalar or (M,); results (M,). Several capsules at
    once: ``a``, ``b`` (K, 3), ``r`` scalar, (K, 1) or (K, M); results (K, M)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    D = np.asarray(dirs, np.float64)
    if a.ndim == 2:
        a, b, D = a[:, None, :], b[:, None, :], D[None, :, :]
    t_in, t_out = _capsule_ranges(D, a, b, r, True, exit_range)
    return (t_in, t_out) if exit_range else t_in


# (rows, surface depths, spreads) -> (joint centres (M, 3), sigmas (M,)), see lifting step 4
CentreFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def repair_occlusions(kps: Keypoints, rays: np.ndarray, meas: Measured, spec: SkeletonSpec,
                      world: Optional[np.ndarray], low: np.ndarray,
                      band: Tuple[np.ndarray, np.ndarray], anchors: np.ndarray,
                      cfg: "LiftingConfig", to_centre: CentreFn) -> Tuple[int, int]:
    """Joints hidden (wholly or partly) behind another body part, in place on ``kps``.

    A measured joint is *suspect* when its viewing ray, widened by its sampling window,
    meets another part's capsule (built from the lifted joints) no nearer than the measured
    surface: the depth may belong to that part. A suspect whose window is dominated by a
    surface behind the occluder (``frac_alt`` >= 0.5) takes that surface (``to_centre``).
    Otherwise it keeps its depth if its bone to a trusted neighbour has the expected length;
    if not, it is moved along its ray to the nearest position at that bone length behind the
    occluding part and marked ``SOURCE_MODEL``. Low-score joints (``low``) are always suspects,
    and they are made invalid where this check is impossible or fails. Finally joints defined
    as means of others (``derived``) are recomputed. ``band``: (lo, hi) depth per joint where a
    moved joint may go. Returns (joints moved behind an occluder, joints rejected)."""
    n = len(kps)
    tab = skeleton_tables(spec, n)
    valid = kps.xyz_valid & tab.in_skel
    checkable = np.count_nonzero(valid) >= 3     # enough joints to check bones with
    n_occ = n_rej = 0
    if checkable:
        P = kps.xyz.astype(np.float64)
        d = np.empty((n, 3))
        d[:, :2] = rays
        d[:, 2] = 1.0
        dnorm = np.sqrt(np.einsum("ij,ij->i", d, d))
        du = d / dnorm[:, None]
        suspect = valid & low
        behind = np.full(n, -np.inf)   # depth of the occluders' back surfaces on each ray
        part_ok = ~(tab.members & ~kps.xyz_valid[None, :]).any(axis=1)
        idx = np.flatnonzero(valid)
        kk = np.flatnonzero(part_ok)
        if kk.size:
            Pz = np.where(kps.xyz_valid[:, None], P, 0.0)  # NaN rows would poison the sums
            A, B = tab.end_a[kk] @ Pz, tab.end_b[kk] @ Pz
            r = tab.radius[kk][:, None]
            dirs = du[idx]
            t_in = ray_capsule_range(dirs, A, B, r + meas.win_m[idx][None, :])
            range_meas = meas.z[idx] * dnorm[idx]
            with np.errstate(invalid="ignore"):
                expl = (~tab.members[kk[:, None], idx] & np.isfinite(t_in)
                        & (range_meas[None, :] >= t_in - cfg.occlusion_tol_m))
            part, ray = np.nonzero(expl)
            if part.size:
                joint = idx[ray]
                suspect[joint] = True
                # where the ray leaves the occluder (its true radius): the depth behind it
                _, t_out = _capsule_ranges(dirs[ray], A[part], B[part], r[part, 0],
                                           entry=False, exit=True)
                z_out = np.where(np.isfinite(t_out), t_out / dnorm[joint], -np.inf)
                np.maximum.at(behind, joint, z_out)
        # suspects whose window is mostly a surface behind the occluder: take that surface
        alt = suspect & ~low & (meas.frac_alt >= 0.5) & np.isfinite(meas.z_alt)
        if alt.any():
            j = np.flatnonzero(alt)
            p, sig = to_centre(j, meas.z_alt[j], meas.spread_alt[j])
            kps.xyz[j], kps.xyz_sigma[j] = p, sig
            P[j] = p
            suspect[j] = False
        n_occ, n_rej = _bone_repair(kps, P, d, suspect, valid, behind, tab, world, low, band,
                                    anchors, cfg)
    # low-score joints that could not be checked (outside the skeleton, e.g. face points,
    # or too few joints measured to check anything) are not trusted
    drop = low & kps.xyz_valid
    if checkable:
        drop &= ~tab.in_skel
    if drop.any():
        kps.xyz_valid[drop] = False
        kps.xyz[drop] = np.nan
        kps.xyz_sigma[drop] = np.nan
        kps.xyz_source[drop] = 0
    for j, members in spec.derived:
        m = list(members)
        if np.all(kps.xyz_valid[m]):
            kps.xyz[j] = kps.xyz[m].mean(axis=0)
            kps.xyz_valid[j] = True
            kps.xyz_sigma[j] = float(np.mean(kps.xyz_sigma[m]))
            kps.xyz_source[j] = np.max(kps.xyz_source[m])
    return n_occ, n_rej


def _invalidate(kps: Keypoints, j: int) -> None:
    kps.xyz[j] = np.nan
    kps.xyz_valid[j] = False
    kps.xyz_sigma[j] = np.nan
    kps.xyz_source[j] = 0


def _dist(p, q) -> float:
    return math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2)


def _bone_repair(kps: Keypoints, P: np.ndarray, d: np.ndarray, suspect: np.ndarray,
                 valid: np.ndarray, behind: np.ndarray, tab: SkeletonTables,
                 world: Optional[np.ndarray], low: np.ndarray,
                 band: Tuple[np.ndarray, np.ndarray], anchors: np.ndarray,
                 cfg: "LiftingConfig") -> Tuple[int, int]:
    """Resolve suspects (see :func:`repair_occlusions`), then reject gross bone-length
    violations: a limb joint (not an anchor) whose bone to a valid joint nearer the torso
    differs from its reference by more than ``max(gross_bone_m, gross_bone_rel * L)`` was
    measured on something else (e.g. a wall close behind the person) and becomes invalid.
    Returns (joints moved, joints rejected).

    The statistics are vectorised; the joint-by-joint propagation works on Python floats
    (a handful of joints: numpy's per-call overhead would dominate)."""
    n = len(kps)
    trusted_a = valid & ~suspect
    ba, bb = tab.bone_a, tab.bone_b
    blen_a = row_norms(P[ba] - P[bb])
    bt_a = trusted_a[ba] & trusted_a[bb]
    stature = (median(blen_a[bt_a] / tab.ratio[bt_a]) if bt_a.sum() >= 2
               else float("nan"))
    wscale = float("nan")
    wl: List[float] = []
    if world is not None:
        wl_a = row_norms(world[ba] - world[bb])
        ok = bt_a & (wl_a > 1e-3)
        if ok.sum() >= 2:
            wscale = median(blen_a[ok] / wl_a[ok])
        wl = wl_a.tolist()
    blen, bt = blen_a.tolist(), bt_a.tolist()
    ratio, mirror, bones = tab.ratio.tolist(), tab.mirror.tolist(), tab.bone_list
    has_wscale, has_stature = math.isfinite(wscale), math.isfinite(stature)

    def reference(k: int) -> Tuple[float, int]:
        """(length, quality: 2 mirror bone measured, 1 model / stature, 0 none)."""
        m = mirror[k]
        if m >= 0 and bt[m]:
            return blen[m], 2
        if has_wscale:
            return wscale * wl[k], 1
        if has_stature:
            return stature * ratio[k], 1
        return float("nan"), 0

    n_occ = n_rej = 0
    Pl, dl = P.tolist(), d.tolist()
    sigma = kps.xyz_sigma.astype(np.float64).tolist()
    trusted, resolved, pending = trusted_a.tolist(), trusted_a.tolist(), suspect.tolist()
    low_l, behind_l = low.tolist(), behind.tolist()
    band_lo, band_hi = band[0].tolist(), band[1].tolist()

    def drop(j: int) -> None:
        _invalidate(kps, j)
        resolved[j] = False

    progress = True
    while progress and any(pending):
        progress = False
        for j in [j for j in range(n) if pending[j]]:
            opts = []
            for k, nb in tab.adjacent[j]:
                if resolved[nb]:
                    L, q = reference(k)
                    opts.append((q, -sigma[nb], k, nb, L))
            if not opts:
                continue
            q, _, k, nb, L = max(opts)
            pending[j], progress = False, True
            resolved[j] = True
            if q == 0:
                if low_l[j]:
                    drop(j)
                continue
            pj, pn, dj = Pl[j], Pl[nb], dl[j]
            l_meas = _dist(pj, pn)
            # a 3D bone can look longer by noise, but shorter than its length only when an
            # end is not where it was measured: no absolute floor on that side
            if (l_meas - L <= max(cfg.bone_tol_m, cfg.bone_tol_rel * L)
                    and l_meas >= L * (1.0 - cfg.bone_tol_rel)):
                # verified: its measured bones can now serve as references
                trusted[j] = True
                for kk, other in tab.adjacent[j]:
                    if trusted[other] and not bt[kk]:
                        bt[kk] = True
                        blen[kk] = _dist(Pl[bones[kk][0]], Pl[bones[kk][1]])
                continue
            qa = dj[0] * dj[0] + dj[1] * dj[1] + dj[2] * dj[2]
            qb = dj[0] * pn[0] + dj[1] * pn[1] + dj[2] * pn[2]
            qc = pn[0] * pn[0] + pn[1] * pn[1] + pn[2] * pn[2] - L * L
            disc = qb * qb - qa * qc
            # not in front of the measured surface, nor inside the occluding part, and
            # where the model's own 3D allows it (when given)
            z_min = max(pj[2], behind_l[j]) - cfg.occlusion_tol_m
            roots = [] if not disc >= 0 else [
                z for z in ((qb - math.sqrt(disc)) / qa, (qb + math.sqrt(disc)) / qa)
                if z >= z_min and band_lo[j] <= z <= band_hi[j]]
            if not roots:
                if low_l[j]:
                    drop(j)
                continue
            z = roots[0]
            Pl[j] = [dj[0] * z, dj[1] * z, dj[2] * z]
            along = abs(z - qb / qa)  # distance from the ray's closest approach
            sens = min(L / max(along * math.sqrt(qa), 1e-3), 3.0)
            sigma[j] = math.sqrt(sigma[nb] ** 2 + (cfg.bone_sigma_rel * L * sens) ** 2)
            kps.xyz[j] = Pl[j]
            kps.xyz_sigma[j] = sigma[j]
            kps.xyz_source[j] = SOURCE_MODEL
            n_occ += 1
    for j in range(n):   # unreachable low-score joints
        if pending[j] and low_l[j]:
            _invalidate(kps, j)

    is_anchor = [False] * n
    for a in np.asarray(anchors).tolist():
        is_anchor[a] = True
    xyz = kps.xyz.astype(np.float64)
    l_now = row_norms(xyz[ba] - xyz[bb]).tolist()   # valid joints do not move
    valid_now = kps.xyz_valid.tolist()
    for k, (a, b) in enumerate(bones):
        if is_anchor[a] and is_anchor[b]:
            continue
        parent, child = (b, a) if is_anchor[b] and not is_anchor[a] else (a, b)
        if not (valid_now[parent] and valid_now[child]):
            continue
        L, q = reference(k)
        if q == 0:
            continue
        if abs(l_now[k] - L) > max(cfg.gross_bone_m, cfg.gross_bone_rel * L):
            _invalidate(kps, child)
            valid_now[child] = False
            n_rej += 1
    return n_occ, n_rej
