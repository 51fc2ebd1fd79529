"""Human-distance safety logic in the style of speed-and-separation monitoring (ISO/TS 15066).

ROS-free. Feed :class:`SafetyMonitor` with every perception result (people's keypoints in the
robot frame) through :meth:`SafetyMonitor.update`, and ask :meth:`SafetyMonitor.evaluate` for the
current :class:`SafetyStatus` as often as needed (e.g. from a timer). The behaviour (state table,
every transition, parameters) is specified in README.md (section "Safety monitor"); in short:

- UNKNOWN: no perception yet, the last result is older than ``stale_timeout_s``, the last input
  was untrusted, time went backwards, or (default policy) someone is seen without any usable 3D
  keypoint. ``speed_scale`` 0: treat as unsafe.
- PROTECTIVE_STOP: a keypoint within the protective distance or inside a protective zone.
- WARNING: a keypoint within the warning distance or inside a warning zone.
- CLEAR: everyone further than the warning distance (or nobody in view).

Distances are to the body *surface*, conservatively: a keypoint is a joint centre (the lifting
pushes depth-measured skin points inward by the joint's body radius), so each point counts as a
sphere of that radius (:func:`pose_perception.core.lifting.joint_radii`, the lifting's own table)
grown by ``sigma_factor`` times its 1-sigma position uncertainty. Points the perception inferred
(model-filled) rather than measured are used unless ``use_inferred_points`` is false, and the
status says whether the closest point was inferred.

A state is left only once the distance exceeds its threshold plus ``hysteresis_m`` (and, with
``release_hold_s``, after that has held for that long). This is a monitoring aid, not a certified
safety function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .layouts import LAYOUTS
from .lifting import joint_radii
from .safety_config import SEVERITY, ZONE_STATE, SafetyConfig, SafetyState, worst_state
from .safety_config import Zone  # noqa: F401 (re-exported)

_TIME_EPS = 1e-9


@dataclass
class PersonObservation:
    """One person for the monitor: keypoints already transformed into the robot frame."""

    track_id: int
    points: np.ndarray                     # (N, 3) metres in the robot frame, NaN where invalid
    valid: np.ndarray                      # (N,) bool
    confidence: np.ndarray                 # (N,) [0, 1]
    velocity: Optional[np.ndarray] = None  # (3,) m/s in the robot frame, when known
    layout: str = ""                       # keypoint layout: names and (default) radii
    sigma: Optional[np.ndarray] = None     # (N,) 1-sigma position uncertainty [m]; None or a
    #                                        non-finite value: 0
    inferred: Optional[np.ndarray] = None  # (N,) bool: inferred (model-filled), not measured
    radius: Optional[np.ndarray] = None    # (N,) body radius [m] (joint centre -> skin); None:
    #                                        joint_radii(layout) (zeros for other layouts)


@dataclass
class SafetyStatus:
    state: SafetyState
    speed_scale: float                     # [0, 1]; 0 for UNKNOWN and PROTECTIVE_STOP
    reason: str
    stamp_s: float = math.nan              # stamp of the perception data used (NaN: none)
    age_s: float = math.nan                # evaluation time - stamp_s
    closest_track_id: int = -1             # -1 when nobody is located
    closest_keypoint_index: int = -1
    closest_keypoint_name: str = ""
    closest_point: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    closest_distance_m: float = math.inf   # to the body surface, margins subtracted (see module)
    closest_point_inferred: bool = False   # the closest point was inferred (model-filled)
    closest_point_sigma_m: float = math.nan   # its 1-sigma position uncertainty
    closest_point_radius_m: float = math.nan  # its body radius (joint centre -> skin)
    people_count: int = 0                  # people in the data (ignored ones excluded)
    unlocated_count: int = 0               # of them, seen without any usable 3D keypoint
    protective_distance_m: float = math.nan  # effective thresholds used for the closest person
    warning_distance_m: float = math.nan
    active_zones: Tuple[str, ...] = ()

    @property
    def state_name(self) -> str:
        return self.state.name


PeopleInput = Iterable[Union[PersonObservation, tuple]]


def _as_observation(item) -> PersonObservation:
    if isinstance(item, PersonObservation):
        obs = item
    else:
        obs = PersonObservation(*item)
    pts = np.asarray(obs.points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"person {obs.track_id}: points must be (N, 3), got {pts.shape}")
    n = len(pts)
    valid = np.asarray(obs.valid, bool).reshape(-1)
    conf = np.asarray(obs.confidence, np.float64).reshape(-1)
    if len(valid) != n or len(conf) != n:
        raise ValueError(f"person {obs.track_id}: {n} points but {len(valid)} valid flags and "
                         f"{len(conf)} confidences")
    vel = None
    if obs.velocity is not None:
        vel = np.asarray(obs.velocity, np.float64).reshape(3)
    sigma = _per_point(obs, "sigma", n, np.float64, 0.0)
    sigma[~(np.isfinite(sigma) & (sigma >= 0))] = 0.0     # NaN, inf or negative: unknown -> 0
    inferred = _per_point(obs, "inferred", n, bool, False)
    if obs.radius is None:
        radius = joint_radii(obs.layout, n) if _layout_size(obs.layout) == n else np.zeros(n)
    else:
        radius = _per_point(obs, "radius", n, np.float64, 0.0)
        if not (np.isfinite(radius) & (radius >= 0)).all():
            raise ValueError(f"person {obs.track_id}: radii must be finite and >= 0")
    return PersonObservation(int(obs.track_id), pts, valid, conf, vel, obs.layout, sigma,
                             inferred, radius)


def _per_point(obs: PersonObservation, name: str, n: int, dtype, default) -> np.ndarray:
    value = getattr(obs, name)
    if value is None:
        return np.full(n, default, dtype)
    arr = np.array(value, dtype).reshape(-1)
    if len(arr) != n:
        raise ValueError(f"person {obs.track_id}: {n} points but {len(arr)} {name} values")
    return arr


def _layout_size(layout: str) -> int:
    lay = LAYOUTS.get(layout)
    return lay.size if lay is not None else -1


class SafetyMonitor:
    """Safety state machine over people's 3D keypoints; see the module docstring and
    README.md (section "Safety monitor")."""

    def __init__(self, config: Optional[SafetyConfig] = None) -> None:
        self.config = config or SafetyConfig()
        self._full_speed = (self.config.full_speed_distance_m
                            if self.config.full_speed_distance_m is not None
                            else self.config.warning_distance_m)
        self._unobserved: Optional[Tuple[str, ...]] = None   # set_coverage; kept by reset()
        self.reset("no perception data yet")

    # ------------------------------------------------------------------ public API
    def reset(self, reason: str = "reset; waiting for fresh perception data") -> None:
        """Forget everything: UNKNOWN until the next trusted update."""
        self._state = SafetyState.UNKNOWN      # state memory (drives hysteresis)
        self._pending_since: Optional[float] = None
        self._verdict: Optional[SafetyStatus] = None   # from the last trusted update
        self._last_stamp: Optional[float] = None       # last update, trusted or not
        self._untrusted: Optional[str] = None          # reason when the last update was untrusted
        self._blocked: str = reason                    # reason while there is no verdict
        self._last_now: Optional[float] = None

    def set_coverage(self, unobserved: Optional[Sequence[str]]) -> None:
        """Names of the areas (zones, or e.g. the warning-distance disk) that no fresh camera
        observes now (:func:`pose_perception.core.coverage.unobserved`); takes effect at once,
        in every status until the next call. ``None`` (the default): coverage is not known and
        not checked (one camera). While some area is unobserved the state is never CLEAR: it is
        raised to UNKNOWN or WARNING by ``unobserved_area_policy`` (the state memory, and so the
        hysteresis, is left as the data make it)."""
        self._unobserved = None if unobserved is None else tuple(unobserved)

    @property
    def unobserved(self) -> Optional[Tuple[str, ...]]:
        """The areas last given to :meth:`set_coverage` (None: coverage not checked)."""
        return self._unobserved

    @property
    def state(self) -> SafetyState:
        """The state memory (the last state computed from data or reported by evaluate)."""
        return self._state

    def update(self, people: PeopleInput, stamp_s: float, trusted: bool = True,
               reason: str = "") -> SafetyStatus:
        """Feed one perception result taken at ``stamp_s`` (seconds).

        ``people``: :class:`PersonObservation` s or tuples ``(track_id, points, valid,
        confidences[, velocity])``. ``trusted=False`` (no CameraInfo, no depth, failed frame,
        missing transform, ...) forces UNKNOWN with ``reason`` until a trusted update comes.
        Malformed input is treated as untrusted. Returns the status at ``stamp_s`` (without
        advancing the clock that :meth:`evaluate` checks for going backwards).
        """
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            self._set_unknown()
            self._untrusted = f"invalid perception stamp {stamp_s}"
            return self._unknown(self._untrusted)
        if self._last_stamp is not None and stamp_s < self._last_stamp - _TIME_EPS:
            msg = (f"perception time went backwards ({stamp_s:.3f} s after {self._last_stamp:.3f}"
                   " s); waiting for fresh data")
            self.reset(msg)
            self._last_stamp = stamp_s
            return self._unknown(msg, stamp_s)
        self._last_stamp = stamp_s
        if trusted:
            try:
                obs = [_as_observation(p) for p in people]
            except (TypeError, ValueError) as exc:
                trusted, reason = False, f"malformed people input: {exc}"
        if not trusted:
            self._untrusted = f"untrusted perception: {reason or 'no reason given'}"
            self._set_unknown()
            self._verdict = None
            self._blocked = self._untrusted
            return self._status_at(stamp_s)

        if self._verdict is None or stamp_s - self._verdict.stamp_s > self.config.stale_timeout_s:
            self._set_unknown()                # fresh data after a gap: start conservatively
        self._untrusted = None
        candidate = self._assess(obs, stamp_s)
        self._transition(candidate.state, stamp_s)
        self._verdict = self._finalise(candidate)
        return self._status_at(stamp_s)

    def evaluate(self, now_s: float) -> SafetyStatus:
        """The status at time ``now_s`` (same clock as the update stamps)."""
        now_s = float(now_s)
        if not math.isfinite(now_s):
            self._set_unknown()
            return self._unknown(f"invalid evaluation time {now_s}")
        if self._last_now is not None and now_s < self._last_now - _TIME_EPS:
            msg = (f"clock went backwards ({now_s:.3f} s after {self._last_now:.3f} s); "
                   "waiting for fresh data")
            self.reset(msg)
            self._last_now = now_s
            return self._unknown(msg)
        self._last_now = now_s
        return self._status_at(now_s)

    # ------------------------------------------------------------------ internals
    def _status_at(self, now_s: float) -> SafetyStatus:
        return self._with_coverage(self._status_from_data(now_s))

    def _with_coverage(self, st: SafetyStatus) -> SafetyStatus:
        """``st`` made at least as restrictive as the unobserved-area policy requires."""
        if not self._unobserved:
            return st
        cfg = self.config
        names = ", ".join(f"'{n}'" for n in self._unobserved)
        note = f"not observed by any fresh camera: {names}"
        if cfg.unobserved_area_policy == "unknown":
            if st.state == SafetyState.UNKNOWN:
                return replace(st, reason=f"{st.reason}; {note}")
            return replace(st, state=SafetyState.UNKNOWN, speed_scale=0.0,
                           reason=f"{note}; {st.reason}")
        if st.state == SafetyState.CLEAR:
            return replace(st, state=SafetyState.WARNING,
                           speed_scale=min(st.speed_scale, cfg.unobserved_speed_scale),
                           reason=f"{note}; {st.reason}")
        return replace(st, speed_scale=min(st.speed_scale, cfg.unobserved_speed_scale)
                       if st.state == SafetyState.WARNING else st.speed_scale,
                       reason=f"{st.reason}; {note}")

    def _status_from_data(self, now_s: float) -> SafetyStatus:
        if self._untrusted is not None:
            return self._unknown(self._untrusted, self._last_stamp, now_s)
        v = self._verdict
        if v is None:
            return self._unknown(self._blocked, self._last_stamp, now_s)
        age = now_s - v.stamp_s
        if age < -self.config.max_future_s:
            return self._unknown(f"perception data is {-age:.3f} s in the future (clock "
                                 "mismatch?)", v.stamp_s, now_s)
        if age > self.config.stale_timeout_s:
            self._set_unknown()
            return self._unknown(f"no fresh perception for {age:.3f} s (stale_timeout_s = "
                                 f"{self.config.stale_timeout_s} s)", v.stamp_s, now_s, v)
        return replace(v, age_s=age, closest_point=v.closest_point.copy())

    def _set_unknown(self) -> None:
        self._state = SafetyState.UNKNOWN
        self._pending_since = None

    def _unknown(self, reason: str, stamp: Optional[float] = None, now: Optional[float] = None,
                 info: Optional[SafetyStatus] = None) -> SafetyStatus:
        st = SafetyStatus(SafetyState.UNKNOWN, 0.0, reason)
        if info is not None:   # keep the last known geometry for diagnostics
            st = replace(info, state=SafetyState.UNKNOWN, speed_scale=0.0, reason=reason,
                         closest_point=info.closest_point.copy())
        if stamp is not None:
            st.stamp_s = stamp
            if now is not None:
                st.age_s = now - stamp
        return st

    def _margin(self, level: SafetyState) -> float:
        """Hysteresis applies to a threshold while the state is at least as severe as it."""
        return self.config.hysteresis_m if SEVERITY[self._state] >= SEVERITY[level] else 0.0

    def _extent(self, ob: PersonObservation) -> np.ndarray:
        """(N,) radius of the sphere each point stands for: its body radius (joint centre ->
        skin) plus sigma_factor times its position uncertainty."""
        return ob.radius + self.config.sigma_factor * ob.sigma

    def _distances(self, pts: np.ndarray, extent: np.ndarray) -> np.ndarray:
        """Distance of each point's sphere (``extent``) from the robot: its surface's distance
        from the frame's z axis (xy) or origin (xyz), minus robot_radius_m, at least 0."""
        if self.config.distance_mode == "xy":
            d = np.hypot(pts[:, 0], pts[:, 1])
        else:
            d = np.linalg.norm(pts, axis=1)
        return np.maximum(d - extent - self.config.robot_radius_m, 0.0)

    def _speed_curve(self, d: float, p: float, f: float) -> float:
        if d <= p:
            return 0.0
        return float(min((d - p) / (f - p), 1.0) ** self.config.speed_scale_exponent)

    def _assess(self, people: List[PersonObservation], stamp_s: float) -> SafetyStatus:
        """Candidate status from the data (state before release-hold), using current margins."""
        cfg = self.config
        ignore = [z for z in cfg.zones if z.kind == "ignore"]
        active = [z for z in cfg.zones if z.kind != "ignore"]
        state, scale = SafetyState.CLEAR, 1.0
        best = SafetyStatus(SafetyState.CLEAR, 1.0, "", stamp_s=stamp_s)
        zones_hit: List[str] = []
        reasons: List[str] = []
        unlocated: List[int] = []
        count = 0
        for ob in people:
            use = (ob.valid & np.isfinite(ob.points).all(axis=1)
                   & (ob.confidence >= cfg.min_confidence))
            if not cfg.use_inferred_points:
                use &= ~ob.inferred
            extent = self._extent(ob)
            if use.any() and ignore:
                keep = use.copy()
                for z in ignore:       # only points whose whole sphere lies inside
                    keep &= ~z.contains(ob.points, -extent)
                if not keep.any():
                    continue                   # everything usable is in an ignore zone
                use = keep
            count += 1
            if not use.any():
                unlocated.append(ob.track_id)
                continue
            idx = np.flatnonzero(use)
            pts, ext = ob.points[idx], extent[idx]
            d = self._distances(pts, ext)
            k = int(np.argmin(d))
            dmin = float(d[k])
            v_h = cfg.human_speed_m_s
            if cfg.use_measured_human_speed and ob.velocity is not None \
                    and np.isfinite(ob.velocity).all():
                v_h = max(v_h, float(np.linalg.norm(ob.velocity)))
            p = max(cfg.protective_distance_m, cfg.protective_separation_m(v_h))
            shift = p - cfg.protective_distance_m
            w, f = cfg.warning_distance_m + shift, self._full_speed + shift
            level = SafetyState.CLEAR
            kp = int(idx[k])
            at = f"person {ob.track_id} at {dmin:.2f} m" + \
                (" (closest point inferred)" if ob.inferred[kp] else "")
            if dmin <= p + self._margin(SafetyState.PROTECTIVE_STOP):
                level = SafetyState.PROTECTIVE_STOP
                reasons.append(f"{at}, within the protective distance {p:.2f} m")
            elif dmin <= w + self._margin(SafetyState.WARNING):
                level = SafetyState.WARNING
                reasons.append(f"{at}, within the warning distance {w:.2f} m")
            s = self._speed_curve(dmin, p, f)
            for z in active:
                zstate = ZONE_STATE[z.kind]
                if z.contains(pts, self._margin(zstate) + ext).any():
                    zones_hit.append(z.name)
                    level = worst_state(level, zstate)
                    reasons.append(f"person {ob.track_id} in {z.kind} zone '{z.name}'")
                    if zstate == SafetyState.WARNING:
                        s = min(s, cfg.warning_zone_speed_scale)
            state = worst_state(state, level)
            scale = min(scale, s)
            if dmin < best.closest_distance_m:
                lay = LAYOUTS.get(ob.layout)
                best = replace(best, closest_track_id=ob.track_id, closest_keypoint_index=kp,
                               closest_keypoint_name=lay.names[kp] if lay and kp < lay.size else "",
                               closest_point=pts[k].copy(), closest_distance_m=dmin,
                               closest_point_inferred=bool(ob.inferred[kp]),
                               closest_point_sigma_m=float(ob.sigma[kp]),
                               closest_point_radius_m=float(ob.radius[kp]),
                               protective_distance_m=p, warning_distance_m=w)
        if unlocated:
            ids = ", ".join(str(i) for i in unlocated)
            msg = f"person {ids} seen without any usable 3D keypoint: distance unknown"
            if cfg.unlocated_person_policy == "unknown":
                state = SafetyState.UNKNOWN
            else:
                state = worst_state(state, SafetyState.WARNING)
                scale = min(scale, cfg.unlocated_speed_scale)
            reasons.insert(0, msg)
        if count == 0:
            reasons.append("nobody in view")
        elif not reasons:
            reasons.append(f"{count} people, closest at {best.closest_distance_m:.2f} m, beyond "
                           f"the warning distance {best.warning_distance_m:.2f} m")
        if math.isnan(best.protective_distance_m):
            p = max(cfg.protective_distance_m, cfg.protective_separation_m())
            best.protective_distance_m = p
            best.warning_distance_m = cfg.warning_distance_m + p - cfg.protective_distance_m
        return replace(best, state=state, speed_scale=scale, reason="; ".join(reasons),
                       people_count=count, unlocated_count=len(unlocated),
                       active_zones=tuple(dict.fromkeys(zones_hit)))

    def _transition(self, candidate: SafetyState, stamp_s: float) -> None:
        """Escalate (and stop) at once; release to a less severe state after release_hold_s."""
        if SEVERITY[candidate] >= SEVERITY[self._state] or \
                candidate == SafetyState.PROTECTIVE_STOP:
            self._state, self._pending_since = candidate, None
            return
        if self._pending_since is None:
            self._pending_since = stamp_s
        if stamp_s - self._pending_since >= self.config.release_hold_s - _TIME_EPS:
            self._state, self._pending_since = candidate, None

    def _finalise(self, candidate: SafetyStatus) -> SafetyStatus:
        state = self._state
        scale = candidate.speed_scale
        reason = candidate.reason
        if state in (SafetyState.UNKNOWN, SafetyState.PROTECTIVE_STOP):
            scale = 0.0
        if state != candidate.state:
            reason = (f"holding {state.name} for release_hold_s = {self.config.release_hold_s} s "
                      f"(data says {candidate.state.name}: {reason})")
        return replace(candidate, state=state, speed_scale=float(scale), reason=reason)
