"""Core body language (``core.body_language``) -> ROS messages: a person's posture, gestures and
pointing into their ``PersonInteraction``; the frame's events as ``PersonEvent`` messages.

Gesture names map to ``Gesture.GESTURE_*`` by name (``"thumb_up"`` -> ``GESTURE_THUMB_UP``);
3D fields are moved by the optional 4x4 ``T`` (camera optical frame -> output frame) like every
other 3D field of the package.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from ..core import geometry as geo
from ..msg import Gesture, PersonEvent, PersonInteraction
from .conversions import _set_point, sec_to_stamp

NAN = float("nan")
_POINTING_METHODS = {"eye_fingertip": PersonInteraction.POINTING_METHOD_EYE_FINGERTIP,
                     "eye_wrist": PersonInteraction.POINTING_METHOD_EYE_WRIST,
                     "shoulder_wrist": PersonInteraction.POINTING_METHOD_SHOULDER_WRIST}
_EVENTS = {"gesture_started": PersonEvent.EVENT_GESTURE_STARTED,
           "gesture_ended": PersonEvent.EVENT_GESTURE_ENDED,
           "fall": PersonEvent.EVENT_FALL}


def gesture_code(name: str) -> int:
    """``Gesture.GESTURE_<NAME>`` of a core gesture name; GESTURE_NONE when unknown."""
    return int(getattr(Gesture, "GESTURE_" + str(name).upper(), Gesture.GESTURE_NONE))


def gesture_to_msg(g) -> Gesture:
    """A core ``body_language.GestureState`` as a message."""
    return Gesture(gesture=gesture_code(g.name), name=str(g.name), side=str(g.side),
                   confidence=float(np.clip(g.confidence, 0.0, 1.0)),
                   start=sec_to_stamp(g.start_s if math.isfinite(g.start_s) else 0.0))


def _moved(p, T: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if p is None:
        return None
    p = np.asarray(p, np.float64).reshape(3)
    return p if T is None else geo.apply(T, p)[0]


def fill_body_language(m: PersonInteraction, body, stamp_s: float,
                       T: Optional[np.ndarray] = None) -> None:
    """Posture, gestures and pointing of ``body`` (a ``BodyLanguage`` or None) at the frame of
    ``stamp_s`` into ``m``."""
    _set_point(m.pointing_origin, None)
    _set_point(m.pointing_target, None)
    m.pointing_target_sigma = NAN
    if body is None:
        return
    m.posture = int(body.posture)
    m.posture_confidence = float(body.posture_confidence)
    since = body.posture_since_s
    m.posture_duration = float(max(0.0, stamp_s - since)) if math.isfinite(since) else 0.0
    m.gestures = [gesture_to_msg(g) for g in body.gestures]
    pt = body.pointing
    if pt is None:
        return
    m.pointing = _set_point(m.pointing_origin, _moved(pt.origin, T))
    if not m.pointing:
        return
    d = np.asarray(pt.direction, np.float64).reshape(3)
    d = d if T is None else geo.rotate(T, d)[0]
    m.pointing_direction.x, m.pointing_direction.y, m.pointing_direction.z = (float(v) for v in d)
    m.pointing_side = str(pt.side)
    m.pointing_method = _POINTING_METHODS.get(str(pt.method), 0)
    m.pointing_confidence = float(np.clip(pt.confidence, 0.0, 1.0))
    m.pointing_target_valid = _set_point(m.pointing_target, _moved(pt.target, T))
    if m.pointing_target_valid:
        m.pointing_target_sigma = float(pt.target_sigma)


def events_to_msgs(events, header, T: Optional[np.ndarray] = None) -> List[PersonEvent]:
    """The frame's core ``PersonEvent`` list as messages with ``header``."""
    out = []
    for e in events:
        m = PersonEvent(header=header, track_id=max(0, int(e.track_id)),
                        event=_EVENTS.get(e.kind, 0), fall_drop=NAN, fall_speed=NAN)
        if e.gesture is not None:
            m.gesture = gesture_to_msg(e.gesture)
        if e.kind == "fall":
            m.fall_drop, m.fall_speed = float(e.fall_drop_m), float(e.fall_speed_mps)
        m.position_valid = _set_point(m.position, _moved(e.position, T))
        out.append(m)
    return out
