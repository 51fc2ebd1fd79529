"""Who pays attention to the robot: per tracked person, whether they look at it (mutual gaze
with hysteresis) and their engagement (a state machine in the spirit of ROS4HRI's
``hri_engagement``). ROS-free; the rules and defaults are in README.md ("Attention and
engagement").

Attention: the angle between the person's gaze (``core.gaze``) and the line from the gaze origin
to the robot's point (``target``, default the camera centre) is *looking* once it stays within
``cone_deg`` for ``min_look_s``, and stops being so once it stays beyond ``cone_deg +
hysteresis_deg`` (or the gaze is lost) for ``min_away_s``.

Engagement level in [0, 1]: ``gaze_factor * distance_factor`` with the gaze factor falling
linearly from 1 (looking straight at the robot) to 0 at ``field_deg``, and the distance factor 1
up to ``near_m``, 0 beyond ``far_m``, linear between. States: DISENGAGED -> ENGAGING when the level
reaches ``engage_level``; ENGAGING -> ENGAGED after ``engaging_s`` above it (back to DISENGAGED
if it drops below ``disengage_level`` first); ENGAGED -> DISENGAGING when the level falls below
``disengage_level``; DISENGAGING -> DISENGAGED after ``disengaging_s`` below it (back to ENGAGED
if it recovers); UNKNOWN while a person is seen without a gaze (face hidden, no head pose) for
more than ``unknown_after_s`` (their last known state is kept until then).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .gaze import Gaze, angle_to_target_deg
from .geometry import vector_norm


_EPS = 1e-6          # stamps are floats: 1.2 - 1.0 < 0.2


class Engagement(IntEnum):
    """Engagement states (mirrored as ENGAGEMENT_* in msg/PersonInteraction.msg)."""

    UNKNOWN = 0
    DISENGAGED = 1
    ENGAGING = 2
    ENGAGED = 3
    DISENGAGING = 4


@dataclass
class AttentionConfig:
    cone_deg: float = 15.0        # gaze within this angle of the robot: looking at it
    hysteresis_deg: float = 5.0   # ... and looking until beyond cone + this
    min_look_s: float = 0.2       # within the cone this long before "looking"
    min_away_s: float = 0.3       # beyond it this long before "not looking"

    def __post_init__(self) -> None:
        if not (0 < self.cone_deg < 90 and self.hysteresis_deg >= 0
                and self.min_look_s >= 0 and self.min_away_s >= 0):
            raise ValueError("need 0 < cone_deg < 90 and hysteresis_deg, min_look_s, "
                             "min_away_s >= 0")


@dataclass
class EngagementConfig:
    field_deg: float = 30.0       # gaze factor 1 at 0 degrees, 0 at this angle
    near_m: float = 1.2           # distance factor 1 up to here (social distance)
    far_m: float = 3.0            # ... and 0 beyond
    engage_level: float = 0.5
    disengage_level: float = 0.3
    engaging_s: float = 1.0
    disengaging_s: float = 2.0
    unknown_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not (0 < self.field_deg <= 180 and 0 <= self.near_m < self.far_m
                and 0 <= self.disengage_level <= self.engage_level <= 1
                and min(self.engaging_s, self.disengaging_s, self.unknown_after_s) >= 0):
            raise ValueError("need 0 < field_deg <= 180, 0 <= near_m < far_m, "
                             "0 <= disengage_level <= engage_level <= 1 and times >= 0")


@dataclass
class PersonInteraction:
    """One person's attention and engagement at one frame."""

    track_id: int
    gaze: Optional[Gaze]
    looking: bool
    looking_angle_deg: float       # NaN without a gaze
    looking_duration_s: float      # how long they have been looking (0 when not)
    engagement: Engagement
    engagement_level: float        # [0, 1]
    distance_m: float              # gaze origin (or person centroid) to the target; NaN unknown
    body: Optional[Any] = None     # body_language.BodyLanguage (gestures, pointing, posture)


@dataclass
class _State:
    looking: bool = False
    looking_since: float = math.nan
    pending_since: float = math.nan     # when the attention change now pending started
    engagement: Engagement = Engagement.DISENGAGED
    phase_since: float = math.nan       # start of ENGAGING / DISENGAGING
    last_gaze_s: float = math.nan
    last_seen_s: float = math.nan


def engagement_level(angle_deg: float, distance_m: float, cfg: EngagementConfig) -> float:
    """The level of the module docstring (0 when either is unknown)."""
    if not (math.isfinite(angle_deg) and math.isfinite(distance_m)):
        return 0.0
    gaze = max(0.0, 1.0 - angle_deg / cfg.field_deg)
    dist = 1.0 if distance_m <= cfg.near_m else max(
        0.0, 1.0 - (distance_m - cfg.near_m) / (cfg.far_m - cfg.near_m))
    return gaze * dist


class InteractionTracker:
    """Attention and engagement per track id over time (see the module docstring)."""

    def __init__(self, attention: Optional[AttentionConfig] = None,
                 engagement: Optional[EngagementConfig] = None,
                 forget_after_s: float = 5.0) -> None:
        self.attention = attention or AttentionConfig()
        self.engagement = engagement or EngagementConfig()
        self.forget_after_s = forget_after_s    # a person not seen this long is forgotten
        self._states: Dict[int, _State] = {}

    def reset(self) -> None:
        self._states = {}

    def update(self, people: Sequence[tuple], stamp_s: float,
               target: Sequence[float] = (0.0, 0.0, 0.0)) -> List[PersonInteraction]:
        """``people``: (track_id, gaze or None, position or None) per tracked person this frame
        (position: the person's 3D point for the distance when there is no gaze), in the frame
        of ``target`` (the robot's point, default the camera centre)."""
        t = float(stamp_s)
        target = np.asarray(target, np.float64)
        out = []
        for track_id, gaze, position in people:
            if track_id <= 0:
                continue
            st = self._states.setdefault(int(track_id), _State())
            st.last_seen_s = t
            out.append(self._update_one(int(track_id), st, gaze, position, t, target))
        forget = self.forget_after_s
        self._states = {k: s for k, s in self._states.items() if t - s.last_seen_s <= forget}
        return out

    def _update_one(self, track_id: int, st: _State, gaze: Optional[Gaze], position,
                    t: float, target: np.ndarray) -> PersonInteraction:
        a, e = self.attention, self.engagement
        angle = angle_to_target_deg(gaze, target) if gaze is not None else math.nan
        origin = gaze.origin if gaze is not None else (
            np.asarray(position, np.float64) if position is not None else None)
        distance = (vector_norm(origin - target)
                    if origin is not None and all(map(math.isfinite, origin.tolist()))
                    else math.nan)
        if gaze is not None:
            st.last_gaze_s = t
        # attention, with hysteresis in angle and time
        inside = math.isfinite(angle) and angle <= (a.cone_deg + (a.hysteresis_deg
                                                                  if st.looking else 0.0))
        if inside != st.looking:
            if math.isnan(st.pending_since):
                st.pending_since = t
            if t - st.pending_since >= (a.min_look_s if inside else a.min_away_s) - _EPS:
                st.looking = inside
                st.looking_since = st.pending_since if inside else math.nan
                st.pending_since = math.nan
        else:
            st.pending_since = math.nan
        # engagement
        level = engagement_level(angle, distance, e)
        if gaze is None:
            if not t - st.last_gaze_s <= e.unknown_after_s + _EPS:  # also: never with one
                st.engagement, st.phase_since = Engagement.UNKNOWN, math.nan
        else:
            self._step(st, level, t, e)
        return PersonInteraction(
            track_id, gaze, st.looking, angle,
            t - st.looking_since if st.looking else 0.0, st.engagement, level, distance)

    @staticmethod
    def _step(st: _State, level: float, t: float, e: EngagementConfig) -> None:
        s = st.engagement
        if s in (Engagement.UNKNOWN, Engagement.DISENGAGED):
            if level >= e.engage_level:
                st.engagement, st.phase_since = Engagement.ENGAGING, t
            else:
                st.engagement = Engagement.DISENGAGED
        elif s == Engagement.ENGAGING:
            if level < e.disengage_level:
                st.engagement, st.phase_since = Engagement.DISENGAGED, math.nan
            elif level >= e.engage_level and t - st.phase_since >= e.engaging_s - _EPS:
                st.engagement, st.phase_since = Engagement.ENGAGED, math.nan
            elif level < e.engage_level:
                st.phase_since = t                    # must stay above it for engaging_s
        elif s == Engagement.ENGAGED:
            if level < e.disengage_level:
                st.engagement, st.phase_since = Engagement.DISENGAGING, t
        elif s == Engagement.DISENGAGING:
            if level >= e.engage_level:
                st.engagement, st.phase_since = Engagement.ENGAGED, math.nan
            elif level < e.disengage_level and t - st.phase_since >= e.disengaging_s - _EPS:
                st.engagement, st.phase_since = Engagement.DISENGAGED, math.nan
            elif level >= e.disengage_level:
                st.phase_since = t                    # must stay below it for disengaging_s
