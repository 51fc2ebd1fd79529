"""Temporal smoothing of tracked keypoints: One Euro filter, per track, 2D and 3D, plus velocity.

ROS-free. The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) is a first-order low-pass filter
whose cutoff rises with the (filtered) speed of the signal: ``cutoff = min_cutoff + beta * |dx|``;
slow signals are smoothed strongly (less jitter), fast ones little (less lag). Here it is
vectorised: every element of an array is an independent channel with its own state.

Typical use after the tracker::

    smoother = PersonSmoother(SmootherConfig())
    smoothed = smoother.update(tracked_persons, stamp_s)   # new Person objects; inputs untouched

Rules: one filter state per key (track id); a key never seen before, unseen for longer than
``max_gap_s``, or a track id that changed starts fresh (so nothing is smoothed across a track
switch); untracked people (track id 0) pass through unsmoothed. Only valid 3D points are filtered;
an invalid point resets its own state. A duplicated stamp returns the previous output; a stamp
going backwards resets everything.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, Hashable, List, Optional, Sequence

import numpy as np

from .geometry import finite_rows
from .tracking import person_centroid
from .types import SOURCE_NONE, Keypoints, Person

_TIME_EPS = 1e-9


def _alpha(dt: float, cutoff_hz):
    """Smoothing factor of an exponential filter with the given cutoff (float or array; a
    float's on Python floats: the same value without numpy's per-call cost)."""
    floor = max(cutoff_hz, 1e-6) if isinstance(cutoff_hz, float) else np.maximum(cutoff_hz, 1e-6)
    tau = 1.0 / (2.0 * math.pi * floor)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised One Euro filter: each element of the input array is filtered independently.

    ``min_cutoff`` [Hz] sets the smoothing of a still signal, ``beta`` [1/unit of x] how quickly
    the cutoff rises with speed, ``d_cutoff`` [Hz] the cutoff of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"need min_cutoff > 0, d_cutoff > 0, beta >= 0; got {min_cutoff}, "
                             f"{d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next sample is passed through."""
        self._t: Optional[float] = None
        self._x: Optional[np.ndarray] = None      # last filtered value
        self._raw: Optional[np.ndarray] = None    # last raw value (for the derivative)
        self._dx: Optional[np.ndarray] = None     # last filtered derivative
        self._init: Optional[np.ndarray] = None   # per-element: has state
        self._out: Optional[np.ndarray] = None    # last output
        self._has_dx: Optional[np.ndarray] = None  # per-element: derivative measured

    @property
    def derivative(self) -> Optional[np.ndarray]:
        """Filtered derivative [unit/s] of the last sample; NaN where an element has no history."""
        if self._dx is None:
            return None
        return np.where(self._init & self._has_dx, self._dx, np.nan)

    def __call__(self, x, t: float, valid=None) -> np.ndarray:
        """Filter sample ``x`` taken at ``t`` seconds. ``valid`` (bool, broadcastable to the
        leading dims of x, e.g. (N,) for (N, 3)) marks usable elements; non-finite elements are
        invalid too. Invalid elements are returned as given and their state is reset."""
        x = np.array(x, np.float64)           # a copy: kept as the last raw sample
        ok = np.isfinite(x)
        if valid is not None:
            v = np.asarray(valid, bool)
            ok &= v.reshape(v.shape + (1,) * (x.ndim - v.ndim))
        t = float(t)
        if self._t is not None and self._x is not None and self._x.shape == x.shape:
            dt = t - self._t
            if abs(dt) <= _TIME_EPS:          # duplicated stamp: same answer as before
                return self._out.copy()
            if dt < 0:                        # time went backwards
                self.reset()
        if self._t is None or self._x is None or self._x.shape != x.shape:
            self._x = np.where(ok, x, np.nan)
            self._raw = self._x.copy()
            self._dx = np.zeros_like(x)
            self._init = ok.copy()
            self._has_dx = np.zeros(x.shape, bool)
            self._t = t
            self._out = x.copy()
            return x.copy()

        dt = t - self._t
        old = ok & self._init               # elements filtered before and valid now
        every = bool(old.all())             # the usual frame: nothing to mask
        dx = self._dx + _alpha(dt, self.d_cutoff) * ((x - self._raw) / dt - self._dx)
        if not every:
            dx = np.where(old, dx, 0.0)     # new and invalid elements: no derivative
        a = _alpha(dt, self.min_cutoff + self.beta * np.abs(dx))
        out = self._x + a * (x - self._x)
        if every:
            self._x, self._raw = out, x
        else:
            out = np.where(old, out, x)     # new and invalid elements: as given
            self._x, self._raw = np.where(ok, out, np.nan), np.where(ok, x, np.nan)
        self._dx, self._has_dx, self._init, self._t, self._out = dx, old, ok, t, out
        return out.copy()


@dataclass
class SmootherConfig:
    """Parameters of :class:`KeypointSmoother` / :class:`PersonSmoother` (units in the names)."""

    min_cutoff_2d_hz: float = 1.0     # still-signal cutoff of the 2D keypoints
    beta_2d: float = 0.02             # [1/px] cutoff increase per px/s of keypoint speed
    min_cutoff_3d_hz: float = 1.0     # still-signal cutoff of the 3D keypoints and centroid
    beta_3d: float = 2.0              # [1/m] cutoff increase per m/s
    d_cutoff_hz: float = 1.0          # cutoff of the speed estimates (and of the velocity output)
    max_gap_s: float = 0.5            # a key unseen for longer starts fresh
    smooth_faces: bool = True         # associated faces (key: ('face', track_id))
    smooth_hands: bool = True         # hands (key: ('hand', track_id, handedness))

    def __post_init__(self) -> None:
        if min(self.min_cutoff_2d_hz, self.min_cutoff_3d_hz, self.d_cutoff_hz) <= 0:
            raise ValueError("cutoff frequencies must be > 0")
        if min(self.beta_2d, self.beta_3d) < 0 or self.max_gap_s <= 0:
            raise ValueError("beta must be >= 0 and max_gap_s > 0")


class _KeyState:
    __slots__ = ("xy", "xyz", "last_s")

    def __init__(self, cfg: SmootherConfig) -> None:
        self.xy = OneEuroFilter(cfg.min_cutoff_2d_hz, cfg.beta_2d, cfg.d_cutoff_hz)
        self.xyz = OneEuroFilter(cfg.min_cutoff_3d_hz, cfg.beta_3d, cfg.d_cutoff_hz)
        self.last_s = -math.inf


class KeypointSmoother:
    """One Euro smoothing of keypoint sets, one filter state per key (e.g. a track id)."""

    def __init__(self, config: Optional[SmootherConfig] = None) -> None:
        self.config = config or SmootherConfig()
        self._states: Dict[Hashable, _KeyState] = {}

    def reset(self) -> None:
        self._states.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._states

    def __len__(self) -> int:
        return len(self._states)

    def prune(self, stamp_s: float) -> None:
        """Drop the states of keys unseen for longer than ``max_gap_s``."""
        gap = self.config.max_gap_s
        for key in [k for k, s in self._states.items() if stamp_s - s.last_s > gap]:
            del self._states[key]

    def smooth(self, key: Hashable, kp: Keypoints, stamp_s: float) -> Keypoints:
        """Smoothed copy of ``kp`` (2D always; 3D where ``xyz_valid``). ``kp`` is not modified."""
        state = self._states.get(key)
        if state is None or stamp_s - state.last_s > self.config.max_gap_s:
            state = self._states[key] = _KeyState(self.config)
        elif stamp_s < state.last_s - _TIME_EPS:    # time went backwards for this key
            state = self._states[key] = _KeyState(self.config)
        state.last_s = max(state.last_s, stamp_s)
        out = Keypoints(kp.layout, state.xy(kp.xy, stamp_s).astype(np.float32), kp.score.copy())
        if kp.xyz is not None:
            valid = kp.xyz_valid if kp.xyz_valid is not None else finite_rows(kp.xyz)
            xyz = state.xyz(kp.xyz, stamp_s, valid).astype(np.float32)
            # valid only where the filter has a finite estimate (on a duplicated stamp it returns
            # its previous output, which has none for a point that just became valid)
            ok = valid & finite_rows(xyz)
            out.xyz = np.where(ok[:, None], xyz, np.float32(np.nan))
            out.xyz_valid = ok
            if kp.xyz_sigma is not None:
                sigma = np.where(ok, kp.xyz_sigma, np.float32(np.nan))
                out.xyz_sigma = sigma.astype(np.float32, copy=False)
            if kp.xyz_source is not None:
                source = np.where(ok, kp.xyz_source, SOURCE_NONE)
                out.xyz_source = source.astype(np.uint8, copy=False)
        return out


class PersonSmoother:
    """Smooths tracked people frame by frame and estimates their torso velocity (m/s).

    :meth:`update` returns shallow copies of the persons with smoothed ``body`` (and face mesh /
    hands when enabled), ``centroid`` (smoothed robust torso position, see
    :func:`~pose_perception.core.tracking.torso_centroid`) and ``velocity`` (its filtered time
    derivative; None until a track has two consecutive samples with a centroid).
    """

    def __init__(self, config: Optional[SmootherConfig] = None) -> None:
        self.config = config or SmootherConfig()
        self.keypoints = KeypointSmoother(self.config)
        self._centroid_filters: Dict[int, OneEuroFilter] = {}
        self._centroid_last: Dict[int, float] = {}
        self._last_stamp: Optional[float] = None

    def reset(self) -> None:
        self.keypoints.reset()
        self._centroid_filters.clear()
        self._centroid_last.clear()
        self._last_stamp = None

    def update(self, persons: Sequence[Person], stamp_s: float) -> List[Person]:
        stamp_s = float(stamp_s)
        if self._last_stamp is not None and stamp_s < self._last_stamp - _TIME_EPS:
            self.reset()                                      # bag loop
        self._last_stamp = stamp_s if self._last_stamp is None else max(self._last_stamp, stamp_s)
        out = [self._smooth_person(p, stamp_s) for p in persons]
        self.keypoints.prune(stamp_s)
        gap = self.config.max_gap_s
        for tid in [t for t, s in self._centroid_last.items() if stamp_s - s > gap]:
            self._centroid_filters.pop(tid, None)
            self._centroid_last.pop(tid, None)
        return out

    def _smooth_person(self, p: Person, stamp_s: float) -> Person:
        tid = int(p.track_id)
        centroid = person_centroid(p)
        if tid <= 0:   # untracked: nothing to smooth against
            return dataclasses.replace(p, centroid=centroid, velocity=None)
        cfg = self.config
        body = self.keypoints.smooth(("body", tid), p.body, stamp_s)
        velocity = None
        f = self._centroid_filters.get(tid)
        if f is None or stamp_s - self._centroid_last.get(tid, -math.inf) > cfg.max_gap_s:
            f = self._centroid_filters[tid] = OneEuroFilter(
                cfg.min_cutoff_3d_hz, cfg.beta_3d, cfg.d_cutoff_hz)
        self._centroid_last[tid] = stamp_s
        if centroid is not None:
            centroid = f(centroid, stamp_s)
            d = f.derivative
            if d is not None and np.isfinite(d).all():
                velocity = d.copy()
        else:
            f.reset()
        face = p.face
        if face is not None and cfg.smooth_faces and face.associated:
            face = dataclasses.replace(
                face, mesh=self.keypoints.smooth(("face", tid), face.mesh, stamp_s))
        hands = list(p.hands)
        if cfg.smooth_hands:
            seen: Dict[str, int] = {}
            for i, h in enumerate(hands):
                n = seen[h.handedness] = seen.get(h.handedness, -1) + 1
                key = ("hand", tid, h.handedness, n)
                hands[i] = dataclasses.replace(
                    h, keypoints=self.keypoints.smooth(key, h.keypoints, stamp_s))
        return dataclasses.replace(p, body=body, centroid=centroid, velocity=velocity,
                                   face=face, hands=hands)
