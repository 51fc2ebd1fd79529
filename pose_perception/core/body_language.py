"""Gestures, pointing and posture of every tracked person, frame by frame. ROS-free.

One :class:`BodyLanguageTracker` per camera combines, per track id:
- the posture and falls (``posture.PostureTracker``),
- the body gestures (``body_gestures.BodyGestureTracker``),
- pointing in 3D (``pointing.PointingTracker``; the ray is met with the depth image),
- each hand's gesture (``Hand.gesture``: the canned classifier's probabilities, from
  ``hand_gestures``) with the same kind of hysteresis as the body gestures: a class (not "none")
  whose probability is at least ``hand_min_probability`` becomes active after ``hand_on_s`` and
  ends after ``hand_off_s`` without it.
into one :class:`BodyLanguage` per person (carried by ``interaction.PersonInteraction.body``) and
the events of the frame (:class:`PersonEvent`: gesture started / ended, fall).

``up`` is the unit vector against gravity in the frame of the 3D keypoints (the camera's optical
frame); the caller gets it from TF. Without it the camera is assumed level: up = (0, -1, 0).
Box-only people and people without 3D get no posture (UNKNOWN) and no gestures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .body_gestures import BodyGestureConfig, BodyGestureTracker
from .hand_gestures import HAND_GESTURES
from .pointing import Pointing, PointingConfig, PointingTracker
from .posture import Posture, PostureConfig, PostureTracker
from .types import Person

LEVEL_CAMERA_UP = (0.0, -1.0, 0.0)    # optical frame: y points down
_EPS = 1e-6


@dataclass
class BodyLanguageConfig:
    hand_min_probability: float = 0.6   # a hand gesture counts from this class probability
    hand_on_s: float = 0.2              # held this long before it is reported
    hand_off_s: float = 0.3             # reported until absent this long

    def __post_init__(self) -> None:
        if not (0.0 < self.hand_min_probability <= 1.0 and self.hand_on_s >= 0.0
                and self.hand_off_s >= 0.0):
            raise ValueError("body_language: need 0 < hand_min_probability <= 1 and times >= 0")


@dataclass
class GestureState:
    """A gesture going on now."""

    name: str             # a BodyGesture name in lower case, "pointing", or a HAND_GESTURES name
    side: str             # 'left' / 'right' (the person's own), 'both' or ''
    confidence: float     # [0, 1]
    start_s: float        # when it started


@dataclass
class BodyLanguage:
    """One tracked person's posture, gestures and pointing at one frame."""

    posture: Posture = Posture.UNKNOWN
    posture_confidence: float = 0.0
    posture_since_s: float = math.nan
    gestures: List[GestureState] = field(default_factory=list)
    pointing: Optional[Pointing] = None


@dataclass
class PersonEvent:
    """Something that happened to one tracked person at ``stamp_s``."""

    track_id: int
    kind: str                                  # 'gesture_started', 'gesture_ended' or 'fall'
    stamp_s: float
    gesture: Optional[GestureState] = None     # gesture events
    fall_drop_m: float = math.nan              # fall
    fall_speed_mps: float = math.nan           # fall
    position: Optional[np.ndarray] = None      # (3,) the person's torso centre, when known


@dataclass
class _HandState:
    name: str = "none"
    since: float = math.nan         # when the pending / active class was first seen
    last_seen: float = math.nan     # last frame with the active class
    active: bool = False
    confidence: float = 0.0


class BodyLanguageTracker:
    """Posture, gestures and pointing per track id over time (see the module docstring)."""

    def __init__(self, config: Optional[BodyLanguageConfig] = None,
                 posture: Optional[PostureConfig] = None,
                 gestures: Optional[BodyGestureConfig] = None,
                 pointing: Optional[PointingConfig] = None, forget_after_s: float = 5.0) -> None:
        self.config = config or BodyLanguageConfig()
        self._cfgs = (posture or PostureConfig(), gestures or BodyGestureConfig(),
                      pointing or PointingConfig())
        self.forget_after_s = forget_after_s
        self.reset()

    def reset(self) -> None:
        self.postures = PostureTracker(self._cfgs[0])
        self.gestures = BodyGestureTracker(self._cfgs[1])
        self.pointing = PointingTracker(self._cfgs[2])
        self._hands: Dict[Tuple[int, str], _HandState] = {}
        self._pointing_since: Dict[int, Tuple[float, str]] = {}
        self._seen: Dict[int, float] = {}

    def update(self, persons: Sequence[Person], stamp_s: float,
               up: Sequence[float] = LEVEL_CAMERA_UP, depth_m: Optional[np.ndarray] = None,
               camera=None) -> Tuple[Dict[int, BodyLanguage], List[PersonEvent]]:
        """Every tracked person with landmarks this frame: ``{track_id: BodyLanguage}`` and the
        frame's events. ``depth_m`` and ``camera`` (registered to the colour image) let the
        pointing ray meet the scene; without them pointing gives the ray only."""
        t = float(stamp_s)
        up = _unit(up)
        out: Dict[int, BodyLanguage] = {}
        events: List[PersonEvent] = []
        for p in persons:
            if p.track_id <= 0 or p.box_only:
                continue
            self._seen[p.track_id] = t
            out[p.track_id] = self._update_one(p, t, up, depth_m, camera, events)
        self._forget(t)
        return out, events

    # ------------------------------------------------------------------ per person
    def _update_one(self, p: Person, t: float, up: np.ndarray, depth_m, camera,
                    events: List[PersonEvent]) -> BodyLanguage:
        tid = p.track_id
        where = _torso(p)
        state, fall = self.postures.update(tid, p.body, t, up)
        if fall is not None:
            events.append(PersonEvent(tid, "fall", t, fall_drop_m=float(fall.drop_m),
                                      fall_speed_mps=float(fall.speed_mps), position=where))
        hands = self._hand_gestures(p, t, events, where)
        palm = max((g.confidence for g in hands if g.name == "open_palm"), default=None)
        active, gesture_events = self.gestures.update(tid, p.body, t, up, open_palm_prob=palm)
        body = [GestureState(g.gesture.name.lower(), _side_of(g.gesture.name),
                             float(g.confidence), float(g.start_s)) for g in active]
        for e in gesture_events:
            g = GestureState(e.gesture.name.lower(), _side_of(e.gesture.name),
                             float(e.confidence), float(e.stamp_s))
            events.append(PersonEvent(tid, "gesture_started" if e.started else "gesture_ended",
                                      float(e.stamp_s), gesture=g, position=where))
        pointing = self.pointing.update(tid, p.body, list(p.hands), t, depth_m, camera)
        body += self._pointing_gesture(tid, pointing, t, events, where)
        return BodyLanguage(state.posture, float(state.confidence), float(state.since_s),
                            body + hands, pointing)

    def _pointing_gesture(self, tid: int, pointing: Optional[Pointing], t: float,
                          events: List[PersonEvent], where) -> List[GestureState]:
        """Pointing as a gesture too (started / ended events)."""
        before = self._pointing_since.get(tid)
        if pointing is None:
            if before is not None:
                del self._pointing_since[tid]
                events.append(PersonEvent(tid, "gesture_ended", t, position=where, gesture=(
                    GestureState("pointing", before[1], 0.0, before[0]))))
            return []
        if before is None or before[1] != pointing.side:
            before = self._pointing_since[tid] = (float(pointing.start_s), pointing.side)
            g = GestureState("pointing", pointing.side, float(pointing.confidence), before[0])
            events.append(PersonEvent(tid, "gesture_started", t, gesture=g, position=where))
        return [GestureState("pointing", pointing.side, float(pointing.confidence), before[0])]

    def _hand_gestures(self, p: Person, t: float, events: List[PersonEvent],
                       where) -> List[GestureState]:
        c = self.config
        out = []
        for hand in p.hands:
            probs = getattr(hand, "gesture", None)
            st = self._hands.setdefault((p.track_id, hand.handedness), _HandState())
            if probs is None:
                name, prob = "none", 0.0
            else:
                k = int(np.argmax(probs))
                name, prob = HAND_GESTURES[k], float(probs[k])
                if prob < c.hand_min_probability:
                    name = "none"
            if name != "none" and name == st.name:
                st.last_seen, st.confidence = t, prob
                if not st.active and t - st.since >= c.hand_on_s - _EPS:
                    st.active = True
                    events.append(PersonEvent(p.track_id, "gesture_started", t, position=where,
                                              gesture=GestureState(name, hand.handedness, prob,
                                                                   st.since)))
            elif not st.active or t - st.last_seen >= c.hand_off_s - _EPS:
                if st.active:
                    events.append(PersonEvent(p.track_id, "gesture_ended", t, position=where,
                                              gesture=GestureState(st.name, hand.handedness,
                                                                   0.0, st.since)))
                st.name, st.since, st.last_seen, st.active = name, t, t, False
                st.confidence = prob
            if st.active:
                out.append(GestureState(st.name, hand.handedness, st.confidence, st.since))
        return out

    def _forget(self, t: float) -> None:
        old = {k for k, s in self._seen.items() if t - s > self.forget_after_s}
        if not old:
            return
        for k in old:
            del self._seen[k]
            self._pointing_since.pop(k, None)
        self._hands = {k: v for k, v in self._hands.items() if k[0] not in old}


def _unit(v: Sequence[float]) -> np.ndarray:
    v = np.asarray(v, np.float64).reshape(3)
    n = float(np.linalg.norm(v))
    if not (math.isfinite(n) and n > 0):
        return np.asarray(LEVEL_CAMERA_UP, np.float64)
    return v / n


def _side_of(name: str) -> str:
    n = name.lower()
    return "both" if n.startswith("both") else "left" if n.startswith("left") else \
        "right" if n.startswith("right") else ""


def _torso(p: Person) -> Optional[np.ndarray]:
    c = p.centroid
    return np.asarray(c, np.float64) if c is not None and np.all(np.isfinite(c)) else None
