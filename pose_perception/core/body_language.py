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

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .body_frame import LEVEL_CAMERA_UP
from .body_gestures import BodyGestureConfig, BodyGestureTracker
from .hand_gestures import HAND_GESTURES
from .hysteresis import OnOffHysteresis
from .joints import joints_of
from .pointing import Pointing, PointingConfig, PointingTracker
from .posture import Posture, PostureConfig, PostureTracker
from .layouts import BLAZEPOSE33_TO_COCO17, COCO17_MAPS
from .types import Keypoints, Person
from .vec3 import Vec, unit, vec

__all__ = ["LEVEL_CAMERA_UP", "BodyLanguage", "BodyLanguageConfig", "BodyLanguageTracker",
           "GestureState", "PersonEvent", "gesture_words"]

_OPEN_PALM = HAND_GESTURES.index("open_palm")


@dataclass
class BodyLanguageConfig:
    hand_min_probability: float = 0.6   # a hand gesture counts from this class probability
    hand_on_s: float = 0.2              # held this long before it is reported
    hand_off_s: float = 0.3             # reported until absent this long
    hand_tau_s: float = 0.2             # time constant of a hand gesture's confidence average

    def __post_init__(self) -> None:
        if not (0.0 < self.hand_min_probability <= 1.0 and self.hand_on_s >= 0.0
                and self.hand_off_s >= 0.0 and self.hand_tau_s > 0.0):
            raise ValueError("body_language: need 0 < hand_min_probability <= 1, times >= 0 "
                             "and hand_tau_s > 0")


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
    # (2, 2) pixels of the colour image: the ray's through-point (fingertip or wrist) and the
    # pointed-at target (or 1 m along the ray without one); None without a camera
    pointing_px: Optional[np.ndarray] = None


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
        self._hands: Dict[Tuple[int, str], OnOffHysteresis] = {}
        self._starts: Dict[tuple, float] = {}     # (track id, gesture key) -> start
        self._pointing_since: Dict[int, Tuple[float, str]] = {}
        self._seen: Dict[int, float] = {}

    def update(self, persons: Sequence[Person], stamp_s: float,
               up: Sequence[float] = LEVEL_CAMERA_UP, depth_m: Optional[np.ndarray] = None,
               camera=None, target: Sequence[float] = (0.0, 0.0, 0.0)
               ) -> Tuple[Dict[int, BodyLanguage], List[PersonEvent]]:
        """Every tracked person with landmarks this frame: ``{track_id: BodyLanguage}`` and the
        frame's events. ``depth_m`` and ``camera`` (registered to the colour image) let the
        pointing ray meet the scene; without them pointing gives the ray only. ``target``: the
        robot's point (a STOP sign is aimed at it), in the frame of the keypoints."""
        t = float(stamp_s)
        up = _unit(up)
        target = vec(np.asarray(target, np.float64).reshape(3))
        out: Dict[int, BodyLanguage] = {}
        events: List[PersonEvent] = []
        for p in persons:
            body = as_blazepose33(p.body) if p.track_id > 0 and not p.box_only else None
            if body is None:
                continue
            if body is not p.body:
                p = dataclasses.replace(p, body=body, world=None)
            self._seen[p.track_id] = t
            out[p.track_id] = self._update_one(p, t, up, target, depth_m, camera, events)
        self._forget(t)
        return out, events

    # ------------------------------------------------------------------ per person
    def _update_one(self, p: Person, t: float, up: Vec, target: Vec, depth_m,
                    camera, events: List[PersonEvent]) -> BodyLanguage:
        tid = p.track_id
        where = _torso(p)
        joints = joints_of(p.body)           # read once, shared by the three trackers
        state, fall = self.postures.update(tid, p.body, t, up, world=p.world, joints=joints)
        if fall is not None:
            events.append(PersonEvent(tid, "fall", float(fall.stamp_s),
                                      fall_drop_m=float(fall.drop_m),
                                      fall_speed_mps=float(fall.speed_mps), position=where))
        hands = self._hand_gestures(p, t, events, where)
        palm = {h.handedness: float(h.gesture[_OPEN_PALM])
                for h in p.hands if getattr(h, "gesture", None) is not None}
        active, gesture_events = self.gestures.update(tid, p.body, t, up,
                                                      open_palm_prob=palm or None,
                                                      target=target, world=p.world,
                                                      joints=joints)
        body = [GestureState(g.gesture.name.lower(), _side_of(g.gesture.name),
                             float(g.confidence), float(g.start_s)) for g in active]
        for e in gesture_events:     # may hold the ended gestures of a track gone for good
            name = e.gesture.name.lower()
            g = GestureState(name, _side_of(name), float(e.confidence),
                             self._start_of(int(e.track_id), name, e.started, e.stamp_s, body))
            events.append(PersonEvent(int(e.track_id), "gesture_started" if e.started
                                      else "gesture_ended", float(e.stamp_s), gesture=g,
                                      position=where if e.track_id == tid else None))
        pointing = self.pointing.update(tid, p.body, list(p.hands), t, depth_m, camera,
                                        joints=joints)
        body += self._pointing_gesture(tid, pointing, t, events, where)
        return BodyLanguage(state.posture, float(state.confidence), float(state.since_s),
                            body + hands, pointing, _pointing_pixels(pointing, camera))

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
        """Each hand's gesture class (not 'none') with hysteresis, and its events."""
        c = self.config
        out = []
        for hand in p.hands:
            side = hand.handedness
            timer = self._hands.get((p.track_id, side))
            if timer is None:
                timer = self._hands[(p.track_id, side)] = OnOffHysteresis(
                    c.hand_on_s, c.hand_off_s, c.hand_min_probability, c.hand_tau_s)
            probs = getattr(hand, "gesture", None)
            seen = {} if probs is None else {
                name: q for name, q in zip(HAND_GESTURES, np.asarray(probs).tolist())
                if name != "none"}
            changes = timer.update(seen, t)
            now = [GestureState(name, side, float(conf), float(start))
                   for name, conf, start in timer.active()]
            for name, started, conf in changes:
                g = GestureState(name, side, float(conf),
                                 self._start_of(p.track_id, (name, side), started, t, now))
                events.append(PersonEvent(p.track_id, "gesture_started" if started
                                          else "gesture_ended", t, gesture=g, position=where))
            out += now
        return out

    def _start_of(self, tid: int, key, started: bool, t: float,
                  active: List[GestureState]) -> float:
        """When a gesture that starts or ends now began (kept from its start to its end)."""
        if started:
            name = key if isinstance(key, str) else key[0]
            side = None if isinstance(key, str) else key[1]
            start = next((g.start_s for g in active if g.name == name
                          and (side is None or g.side == side)), t)
            self._starts[(tid, key)] = start
            return start
        return self._starts.pop((tid, key), t)

    def _forget(self, t: float) -> None:
        old = {k for k, s in self._seen.items() if t - s > self.forget_after_s}
        if not old:
            return
        for k in old:
            del self._seen[k]
            self._pointing_since.pop(k, None)
        self._hands = {k: v for k, v in self._hands.items() if k[0] not in old}
        self._starts = {k: v for k, v in self._starts.items() if k[0] not in old}


def gesture_words(g) -> str:
    """A gesture (``GestureState`` or a ``Gesture`` message) in words: 'right thumb up',
    'waving', 'left hand raised' (the side only where the name does not say it already)."""
    name, side = str(g.name).replace("_", " "), str(g.side)
    return f"{side} {name}" if side in ("left", "right") and side not in name else name


def as_blazepose33(body: Keypoints) -> Optional[Keypoints]:
    """The body in the BlazePose-33 layout the rules are written for: itself, or (custom models'
    COCO-17, Halpe-26, whole-body layouts) its COCO-17 joints in their BlazePose places with the
    rest invalid (no hand or foot points: hands-on-face and crouching are then not told); None for
    a layout without a COCO-17 view."""
    if body.layout == "blazepose33":
        return body
    mapping = COCO17_MAPS.get(body.layout)
    if mapping is None:
        return None
    coco = body.remap("coco17", mapping) if body.layout != "coco17" else body
    out = Keypoints("blazepose33", np.zeros((33, 2)), np.zeros(33))
    idx = list(BLAZEPOSE33_TO_COCO17)
    out.xy[idx], out.score[idx] = coco.xy, coco.score
    if coco.xyz is not None:
        out.init_3d()
        out.xyz[idx], out.xyz_valid[idx] = coco.xyz, coco.xyz_valid
        out.xyz_sigma[idx], out.xyz_source[idx] = coco.xyz_sigma, coco.xyz_source
    return out


def _pointing_pixels(pointing: Optional[Pointing], camera) -> Optional[np.ndarray]:
    if pointing is None or camera is None:
        return None
    end = pointing.target if pointing.target is not None else \
        np.asarray(pointing.fingertip, np.float64) + np.asarray(pointing.direction, np.float64)
    pts = np.stack([np.asarray(pointing.fingertip, np.float64), np.asarray(end, np.float64)])
    if not (np.all(np.isfinite(pts)) and np.all(pts[:, 2] > 0.05)):
        return None
    return np.asarray(camera.project(pts), np.float64).reshape(2, 2)


def _unit(v: Sequence[float]) -> Vec:
    """``v`` as a unit vector; a level camera's up when ``v`` has no direction."""
    u = unit(vec(np.asarray(v, np.float64).reshape(3)))
    return u if u is not None else LEVEL_CAMERA_UP


def _side_of(name: str) -> str:
    n = name.lower()
    return "both" if n.startswith("both") else "left" if n.startswith("left") else \
        "right" if n.startswith("right") else ""


def _torso(p: Person) -> Optional[np.ndarray]:
    c = p.centroid
    return np.asarray(c, np.float64) if c is not None and np.all(np.isfinite(c)) else None
