"""On/off hysteresis in time for per-frame detections (ROS-free), e.g. one person's gestures.

A label is *present* in a frame when its confidence reaches ``min_confidence``. It becomes
active once present in every frame for ``t_on_s`` (its start: the first of those frames) and
ends once absent for ``t_off_s`` after its last present frame. Its confidence is an exponential
average (time constant ``tau_s``) of the per-frame confidence. Stamps are seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Hashable, List, Mapping, Tuple

_EPS = 1e-6          # stamps are floats


@dataclass
class _State:
    on_since: float
    last_present: float
    confidence: float
    active: bool = False


class OnOffHysteresis:
    """Active labels over time for one subject (see the module docstring)."""

    def __init__(self, t_on_s: float, t_off_s: float, min_confidence: float,
                 tau_s: float) -> None:
        self.t_on_s, self.t_off_s = t_on_s, t_off_s
        self.min_confidence, self.tau_s = min_confidence, tau_s
        self._states: Dict[Hashable, _State] = {}
        self._last_s = math.nan

    def update(self, confidences: Mapping[Hashable, float], stamp_s: float
               ) -> List[Tuple[Hashable, bool, float]]:
        """One frame's confidence per label (a label left out counts as 0). Returns the
        transitions this frame decided: (label, started (False: ended), confidence)."""
        t = float(stamp_s)
        dt = t - self._last_s if math.isfinite(self._last_s) else 0.0
        alpha = 1.0 - math.exp(-max(dt, 0.0) / max(self.tau_s, _EPS))
        self._last_s = t
        out = []
        for key in sorted(set(confidences) | set(self._states)):
            conf = float(confidences.get(key, 0.0))
            st = self._states.get(key)
            if conf >= self.min_confidence:
                if st is None:
                    st = self._states[key] = _State(t, t, conf)
                st.last_present = t
                st.confidence += alpha * (conf - st.confidence)
                if not st.active and t - st.on_since >= self.t_on_s - _EPS:
                    st.active = True
                    out.append((key, True, st.confidence))
            elif st is not None:
                st.confidence += alpha * (conf - st.confidence)
                if not st.active:
                    del self._states[key]
                elif t - st.last_present >= self.t_off_s - _EPS:
                    del self._states[key]
                    out.append((key, False, st.confidence))
        return out

    def active(self) -> List[Tuple[Hashable, float, float]]:
        """(label, confidence, start stamp) of each active label, in label order."""
        return [(k, s.confidence, s.on_since) for k, s in sorted(self._states.items())
                if s.active]
