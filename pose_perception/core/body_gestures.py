"""Body gestures per tracked person from the 3D body skeleton over time: a raised hand (left,
right, both), waving, a "stop" arm, crossed arms, hands on the face. ROS-free.

Frames and sources as in ``core.posture``: ``up`` is a unit vector in the frame of the points
(without TF, a level camera: (0, -1, 0) in the camera optical frame); the 3D is the depth-lifted
keypoints when the torso is valid there, else the body model's own metric 3D (``Person.world``,
in the camera's axes; the robot is then taken to lie along the camera's -z from the person).
"Left" and "right" are the person's own (BlazePose's). The person's left axis is the horizontal
part of (left shoulder - right shoulder), their forward axis left x up. Heights are along up.

Per-frame rules (r(x, a, b): 0 at a, 1 at b, linear between; a gesture is *present* in a frame
when its confidence reaches ``min_confidence``, 0.5; defaults in parentheses):
- hand raised: rise = wrist height - shoulder height; confidence r(rise, raise_m, raise_m + 0.1)
  (``raise_m`` 0.10 m), 0 for an arm that makes STOP (reaching towards a robot above is not a
  raised hand). Both hands raised gives BOTH_HANDS_RAISED (the smaller confidence) instead of
  LEFT_HAND_RAISED / RIGHT_HAND_RAISED.
- WAVING (either hand): while the wrist is at least ``wave_above_elbow_m`` (0.05 m) above the
  elbow, the wrist's coordinate along the left axis relative to the elbow is followed; a
  direction reversal counts once the wrist has come back ``wave_amplitude_m`` (0.06 m) from its
  last extreme (a still or trembling hand makes none). Reversals form a run while each comes
  at most half a period of ``wave_min_hz`` (0.5 Hz) after the previous one (a longer gap starts
  a new run). With n reversals in the run (the last 8 at most), the frequency (n - 1) / (2 x
  time from the first to the last one) within [``wave_min_hz``, ``wave_max_hz``] (4 Hz) and
  the last reversal at most a period of ``wave_min_hz`` ago: confidence r(n, wave_reversals -
  1, wave_reversals + 1) (``wave_reversals`` 3). The wrist dropping below the elbow ends the
  run.
- STOP (either arm): e = elbow angle (shoulder-elbow-wrist); d = distance along up between the
  wrist and the line from the shoulder to the robot (``target``, default the frame's origin:
  the camera) at the wrist's distance: the wrist near shoulder height for a robot level with
  the shoulder; a = angle between the forearm (elbow to wrist) and that line. Confidence
  r(e, 140, 160) * r(d, stop_height_m + 0.1, stop_height_m) * r(a, stop_angle_deg + 15,
  stop_angle_deg) (``stop_height_m`` 0.15 m, ``stop_angle_deg`` 30). With an open-palm
  probability p for that hand, times r(p, stop_palm_prob - 0.2, stop_palm_prob) (0.5); without
  one, pointing at the robot with a straight arm counts as STOP too. Times r(trunk angle to up,
  60, 45) when shoulders and hips are seen: a person lying with an arm towards the robot makes
  no stop sign.
- ARMS_CROSSED: s = how far each wrist lies past the body midline (shoulder mid) on the other
  side, along the left axis (the smaller of the two); both wrists between hip height and
  shoulder height + 0.1 m and less than ``crossed_forward_m`` (0.35 m) in front of the
  shoulders: confidence r(s, 0, crossed_m) (``crossed_m`` 0.05 m).
- HANDS_ON_FACE (one hand is enough): D = distance from a hand's centre (mean of the wrist,
  pinky, index and thumb seen) to the nearest face point (nose, eyes, ears, mouth corners);
  confidence r(D, face_m + 0.05, face_m) (``face_m`` 0.10 m). A hand held in front of the face
  passes briefly too: t_on filters that.

Over time (stamps in seconds): a gesture becomes active once present in every frame for
``t_on_s`` (0.3 s): a *started* event; ``start_s`` is its first present frame. It ends once
absent for ``t_off_s`` (0.5 s) after its last present frame: an *ended* event. Events carry the
stamp of the frame that decided them. An active gesture's confidence is an exponential average
(``confidence_tau_s``, 0.3 s) of its per-frame confidence. Tracks not updated for
``forget_after_s`` (5 s), or left out of ``forget(active_ids, stamp_s)``, are dropped and their
active gestures ended.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Deque, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from .body_frame import (FACE, L_ELBOW, L_HAND, L_HIP, L_SHOULDER, L_WRIST, R_ELBOW, R_HAND,
                         R_HIP, R_SHOULDER, R_WRIST, Skeleton, ramp, skeleton_from_keypoints)
from .hysteresis import OnOffHysteresis
from .joints import Joints
from .types import Keypoints
from .vec3 import Vec, angle_deg, dist, dot, sub, unit, vec

_EPS = 1e-6
_SIDES = {"left": (L_SHOULDER, L_ELBOW, L_WRIST, L_HAND),
          "right": (R_SHOULDER, R_ELBOW, R_WRIST, R_HAND)}


class BodyGesture(IntEnum):
    NONE = 0
    LEFT_HAND_RAISED = 1
    RIGHT_HAND_RAISED = 2
    BOTH_HANDS_RAISED = 3
    WAVING = 4
    STOP = 5
    ARMS_CROSSED = 6
    HANDS_ON_FACE = 7


@dataclass
class BodyGestureConfig:
    min_joint_score: float = 0.2      # keypoints scored below this are left out
    min_confidence: float = 0.5       # per-frame confidence for "present"
    t_on_s: float = 0.3
    t_off_s: float = 0.5
    confidence_tau_s: float = 0.3
    forget_after_s: float = 5.0
    raise_m: float = 0.10
    wave_above_elbow_m: float = 0.05
    wave_amplitude_m: float = 0.06
    wave_reversals: int = 3
    wave_min_hz: float = 0.5
    wave_max_hz: float = 4.0
    stop_height_m: float = 0.15
    stop_angle_deg: float = 30.0
    stop_palm_prob: float = 0.5
    crossed_m: float = 0.05
    crossed_forward_m: float = 0.35
    face_m: float = 0.10

    def __post_init__(self) -> None:
        if not (0 <= self.min_joint_score < 1 and 0 < self.min_confidence <= 1):
            raise ValueError("need 0 <= min_joint_score < 1 and 0 < min_confidence <= 1")
        if min(self.t_on_s, self.t_off_s, self.confidence_tau_s) < 0 or self.forget_after_s <= 0:
            raise ValueError("need t_on_s, t_off_s, confidence_tau_s >= 0, forget_after_s > 0")
        if not (0 < self.wave_min_hz < self.wave_max_hz and self.wave_reversals >= 2
                and self.wave_amplitude_m > 0):
            raise ValueError("need 0 < wave_min_hz < wave_max_hz, wave_reversals >= 2, "
                             "and wave_amplitude_m > 0")
        if min(self.raise_m, self.stop_height_m, self.crossed_m, self.crossed_forward_m,
               self.face_m) <= 0 or not 0 < self.stop_angle_deg < 90 \
                or not 0 <= self.stop_palm_prob <= 1:
            raise ValueError("need positive distances, 0 < stop_angle_deg < 90 and "
                             "0 <= stop_palm_prob <= 1")


@dataclass
class ActiveGesture:
    gesture: BodyGesture
    confidence: float
    start_s: float


@dataclass
class GestureEvent:
    track_id: int
    gesture: BodyGesture
    started: bool             # False: ended
    stamp_s: float
    confidence: float


@dataclass
class _Swing:
    """Direction reversals of one wrist's lateral coordinate (see WAVING)."""

    lo: float = math.nan
    hi: float = math.nan
    ext: float = math.nan
    t_ext: float = math.nan
    direction: int = 0
    reversals: Deque[float] = field(default_factory=lambda: deque(maxlen=8))

    def reset(self) -> None:
        self.__init__()

    def step(self, x: float, t: float, amp: float, max_gap: float) -> None:
        if self.direction == 0:
            self.lo = x if math.isnan(self.lo) else min(self.lo, x)
            self.hi = x if math.isnan(self.hi) else max(self.hi, x)
            if x - self.lo >= amp or self.hi - x >= amp:
                self.direction = 1 if x - self.lo >= amp else -1
                self.ext, self.t_ext = x, t
        elif (x - self.ext) * self.direction > 0:
            self.ext, self.t_ext = x, t
        elif (self.ext - x) * self.direction >= amp:
            if self.reversals and self.t_ext - self.reversals[-1] > max_gap + _EPS:
                self.reversals.clear()
            self.reversals.append(self.t_ext)
            self.direction, self.ext, self.t_ext = -self.direction, x, t


@dataclass
class _Track:
    last_s: float
    gestures: OnOffHysteresis
    swings: Dict[str, _Swing] = field(default_factory=lambda: {"left": _Swing(),
                                                               "right": _Swing()})


def _stop(sk: Skeleton, side: str, target: Vec, palm: Optional[float],
          cfg: BodyGestureConfig) -> float:
    s, e, w = (sk.point(i) for i in _SIDES[side][:3])
    if s is None or e is None or w is None:
        return 0.0
    to_robot = unit((0.0, 0.0, -1.0) if sk.from_model else sub(target, s))
    if to_robot is None:
        return 0.0
    level = sk.height(s) + dist(w, s) * dot(to_robot, sk.up)
    conf = (ramp(angle_deg(sub(s, e), sub(w, e)), 140, 160)
            * ramp(abs(sk.height(w) - level), cfg.stop_height_m + 0.1, cfg.stop_height_m)
            * ramp(angle_deg(sub(w, e), to_robot), cfg.stop_angle_deg + 15, cfg.stop_angle_deg))
    if palm is not None:
        conf *= ramp(palm, cfg.stop_palm_prob - 0.2, cfg.stop_palm_prob)
    shoulders = sk.mean((L_SHOULDER, R_SHOULDER), need_all=True)
    hips = sk.mean((L_HIP, R_HIP), need_all=True)
    if shoulders is not None and hips is not None:     # an upright trunk (not lying down)
        conf *= ramp(angle_deg(sub(shoulders, hips), sk.up), 60.0, 45.0)
    return 0.0 if math.isnan(conf) else conf


def _crossed(sk: Skeleton, cfg: BodyGestureConfig) -> float:
    left, fwd = sk.left_axis, sk.forward_axis
    mid, wl, wr = sk.mean((L_SHOULDER, R_SHOULDER), True), sk.point(L_WRIST), sk.point(R_WRIST)
    hip = sk.mean((L_HIP, R_HIP))
    if any(v is None for v in (left, mid, wl, wr, hip)):
        return 0.0
    past = min(-dot(sub(wl, mid), left), dot(sub(wr, mid), left))
    lo, hi = sk.height(hip), sk.height(mid) + 0.1
    placed = all(lo <= sk.height(w) <= hi and dot(sub(w, mid), fwd) < cfg.crossed_forward_m
                 for w in (wl, wr))
    return ramp(past, 0.0, cfg.crossed_m) if placed else 0.0


def _on_face(sk: Skeleton, cfg: BodyGestureConfig) -> float:
    face = sk.valid(FACE)
    best = 0.0
    for side in _SIDES.values():
        hand = sk.mean(side[3])
        if hand is not None and face:
            d = min(dist(p, hand) for p in face)
            best = max(best, ramp(d, cfg.face_m + 0.05, cfg.face_m))
    return best


def _palm(open_palm_prob, side: str) -> Optional[float]:
    if open_palm_prob is None or isinstance(open_palm_prob, (int, float)):
        return open_palm_prob
    return open_palm_prob.get(side)


class BodyGestureTracker:
    """Body gestures per track id with hysteresis (see the module docstring)."""

    def __init__(self, cfg: Optional[BodyGestureConfig] = None) -> None:
        self.cfg = cfg or BodyGestureConfig()
        self._tracks: Dict[int, _Track] = {}

    def reset(self) -> None:
        self._tracks = {}

    def forget(self, active_ids: Iterable[int], stamp_s: float) -> List[GestureEvent]:
        """Drop every track not in ``active_ids``; the ended events of their gestures."""
        keep = set(int(i) for i in active_ids)
        return self._drop([k for k in self._tracks if k not in keep], float(stamp_s))

    def update(self, track_id: int, keypoints: Keypoints, stamp_s: float, up,
               open_palm_prob: Union[None, float, Mapping[str, float]] = None,
               target=(0.0, 0.0, 0.0), world: Optional[np.ndarray] = None, world_up=None,
               joints: Optional[Joints] = None
               ) -> Tuple[List[ActiveGesture], List[GestureEvent]]:
        """One person's frame: ``keypoints`` (blazepose33, 3D in the frame of ``up`` and
        ``target``, the robot's point), ``open_palm_prob`` one probability or one per hand
        ({'left': p, 'right': p}), the model's ``world`` with ``world_up`` and ``joints`` as
        in ``PostureTracker.update``. Returns this person's active gestures and the events of
        this call (including ended gestures of tracks that expired)."""
        cfg, t, tid = self.cfg, float(stamp_s), int(track_id)
        events = self._drop([k for k, v in self._tracks.items()
                             if t - v.last_s > cfg.forget_after_s + _EPS], t)
        tr = self._tracks.get(tid)
        if tr is None:
            tr = self._tracks[tid] = _Track(t, OnOffHysteresis(
                cfg.t_on_s, cfg.t_off_s, cfg.min_confidence, cfg.confidence_tau_s))
        sk = skeleton_from_keypoints(keypoints, up, world, world_up, cfg.min_joint_score, joints)
        present = {} if sk is None else self._frame_gestures(
            sk, tr, t, open_palm_prob, vec(target))
        if sk is None:
            for sw in tr.swings.values():
                sw.reset()
        tr.last_s = t
        events += [GestureEvent(tid, g, started, t, conf)
                   for g, started, conf in tr.gestures.update(present, t)]
        return [ActiveGesture(g, c, s) for g, c, s in tr.gestures.active()], events

    def _frame_gestures(self, sk: Skeleton, tr: _Track, t: float, open_palm_prob,
                        target: Vec) -> Dict[BodyGesture, float]:
        """Per-frame confidence of each gesture (updates the track's waving state)."""
        cfg, out, rise = self.cfg, {}, {}
        stop = {side: _stop(sk, side, target, _palm(open_palm_prob, side), cfg)
                for side in _SIDES}
        for side, (s, _, w, _) in _SIDES.items():
            r = ramp(sk.height(sk.point(w)) - sk.height(sk.point(s)), cfg.raise_m,
                     cfg.raise_m + 0.1)
            rise[side] = 0.0 if stop[side] >= cfg.min_confidence or math.isnan(r) else r
        if min(rise.values()) >= cfg.min_confidence:
            out[BodyGesture.BOTH_HANDS_RAISED] = min(rise.values())
        else:
            out[BodyGesture.LEFT_HAND_RAISED] = rise["left"]
            out[BodyGesture.RIGHT_HAND_RAISED] = rise["right"]
        out[BodyGesture.WAVING] = max(self._wave(sk, side, tr.swings[side], t)
                                      for side in _SIDES)
        out[BodyGesture.STOP] = max(stop.values())
        out[BodyGesture.ARMS_CROSSED] = _crossed(sk, cfg)
        out[BodyGesture.HANDS_ON_FACE] = _on_face(sk, cfg)
        return out

    def _wave(self, sk: Skeleton, side: str, sw: _Swing, t: float) -> float:
        cfg = self.cfg
        _, e, w, _ = _SIDES[side]
        pe, pw, left = sk.point(e), sk.point(w), sk.left_axis
        if pe is None or pw is None or left is None or \
                sk.height(pw) - sk.height(pe) < cfg.wave_above_elbow_m:
            sw.reset()
            return 0.0
        sw.step(dot(sub(pw, pe), left), t, cfg.wave_amplitude_m, 0.5 / cfg.wave_min_hz)
        rev = sw.reversals
        n = len(rev)
        if n < 2 or t - rev[-1] > 1.0 / cfg.wave_min_hz + _EPS:
            return 0.0
        hz = (n - 1) / (2.0 * max(rev[-1] - rev[0], _EPS))
        if not cfg.wave_min_hz <= hz <= cfg.wave_max_hz:
            return 0.0
        return ramp(n, cfg.wave_reversals - 1, cfg.wave_reversals + 1)

    def _drop(self, ids: List[int], t: float) -> List[GestureEvent]:
        events = []
        for k in ids:
            tr = self._tracks.pop(k)
            events += [GestureEvent(k, g, False, t, c) for g, c, _ in tr.gestures.active()]
        return events
