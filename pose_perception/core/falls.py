"""Fall detection for one tracked person: a fast drop of the torso along up, then lying.
ROS-free; ``core.posture.PostureTracker`` runs one ``FallDetector`` per track and documents the
rule and its defaults (module docstring, "Falls").

The detector is fed the height of the torso centre along up (metres, depth-measured 3D only)
and whether the person's tracked posture is LYING, frame by frame with stamps in seconds. A
drop is seen when, within the last ``window_s``, the height fell at least ``drop_m`` below its
highest value there and the downward speed, each measured over at least ``speed_span_s``,
peaked at ``speed_mps`` or more. LYING within ``confirm_s`` of the drop's first frame turns it
into one ``FallEvent``; the detector re-arms once the person is no longer LYING.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Tuple

_EPS = 1e-6          # stamps are floats


@dataclass
class FallEvent:
    track_id: int
    stamp_s: float            # when the drop was first seen
    drop_m: float             # largest drop of the torso centre within the window
    speed_mps: float          # peak downward speed of the torso centre


class FallDetector:
    """One person's fall state (see the module docstring)."""

    def __init__(self, track_id: int, drop_m: float = 0.6, speed_mps: float = 1.0,
                 window_s: float = 1.0, speed_span_s: float = 0.2,
                 confirm_s: float = 3.0) -> None:
        self.track_id = track_id
        self.drop_m, self.speed_mps = drop_m, speed_mps
        self.window_s, self.speed_span_s, self.confirm_s = window_s, speed_span_s, confirm_s
        self._heights: Deque[Tuple[float, float, float]] = deque()   # t, height, speed
        self._drop: Optional[FallEvent] = None                       # waiting for LYING
        self._armed = True

    def clear_heights(self) -> None:
        """Forget the height history (a frame without a measured torso height)."""
        self._heights.clear()

    def update(self, height_m: float, stamp_s: float, lying: bool) -> Optional[FallEvent]:
        """One frame: the torso centre's height (NaN: unknown), whether the tracked posture is
        LYING. Returns the fall event this frame confirms, if any."""
        t = float(stamp_s)
        if not lying:
            self._armed = True
        if self._drop is not None and t - self._drop.stamp_s > self.confirm_s + _EPS:
            self._drop = None
        hs = self._heights
        while hs and t - hs[0][0] > self.window_s + _EPS:
            hs.popleft()
        if math.isfinite(height_m):
            old = [s for s in hs if t - s[0] >= self.speed_span_s - _EPS]
            speed = (old[-1][1] - height_m) / (t - old[-1][0]) if old else 0.0
            hs.append((t, float(height_m), speed))
            drop = max(s[1] for s in hs) - height_m
            peak = max(s[2] for s in hs)
            if self._armed and drop >= self.drop_m and peak >= self.speed_mps:
                if self._drop is None:
                    self._drop = FallEvent(self.track_id, t, float(drop), float(peak))
                else:
                    self._drop.drop_m = max(self._drop.drop_m, float(drop))
                    self._drop.speed_mps = max(self._drop.speed_mps, float(peak))
        if self._drop is not None and self._armed and lying:
            event, self._drop, self._armed = self._drop, None, False
            return event
        return None
