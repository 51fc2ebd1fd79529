"""Health of a node for ``/diagnostics`` (diagnostic_msgs/DiagnosticArray), and rate-limited
logging.

:class:`NodeDiagnostics` collects counters (input frames, processed, dropped, errors), rates over
a sliding window, latency percentiles per stage and end to end, key/value facts (execution
provider, depth path in use, ...) and *issues*: a keyed warning or error that stays active while
it keeps being reported and clears itself ``issue_ttl_s`` after the last report (or at once with
:meth:`NodeDiagnostics.clear`). The status level is the worst active issue; a node that receives
input but has processed nothing for ``stall_s`` is an ERROR. :meth:`NodeDiagnostics.build`
returns the message, :meth:`NodeDiagnostics.due` rate-limits publishing.
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = 0, 1, 2
_LEVEL_BYTES = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN,
                ERROR: DiagnosticStatus.ERROR}


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._t: Deque[float] = deque()

    def tick(self, now: float) -> None:
        self._t.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._t and self._t[0] < now - self.window_s:
            self._t.popleft()

    def rate(self, now: float) -> float:
        self._trim(now)
        if len(self._t) < 2:
            return 0.0
        span = max(now - self._t[0], self._t[-1] - self._t[0])
        return (len(self._t) - 1) / span if span > 0 else 0.0


class Stats:
    """Last ``n`` values of a quantity (e.g. a latency in ms): p50 / p95 / max / mean."""

    def __init__(self, n: int = 300) -> None:
        self._v: Deque[float] = deque(maxlen=n)

    def add(self, v: float) -> None:
        if math.isfinite(v):
            self._v.append(float(v))

    def __len__(self) -> int:
        return len(self._v)

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self._v, float), q)) if self._v else math.nan

    def summary(self) -> Dict[str, float]:
        if not self._v:
            return {"p50": math.nan, "p95": math.nan, "max": math.nan}
        a = np.fromiter(self._v, float)
        return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
                "max": float(a.max())}


class RateLimitedLog:
    """Log each *key* at most once per ``period_s`` (counting the repeats it swallowed).
    ``log_fn(level, text)`` with level 'info' | 'warn' | 'error'."""

    def __init__(self, log_fn: Callable[[str, str], None], period_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log_fn, self.period_s, self.clock = log_fn, period_s, clock
        self._last: Dict[str, Tuple[float, int]] = {}

    def __call__(self, key: str, level: str, text: str) -> bool:
        now = self.clock()
        last, skipped = self._last.get(key, (-math.inf, 0))
        if now - last < self.period_s:
            self._last[key] = (last, skipped + 1)
            return False
        if skipped:
            text = f"{text} (repeated {skipped} more times in the last {now - last:.0f} s)"
        self._last[key] = (now, 0)
        self.log_fn(level, text)
        return True


class NodeDiagnostics:
    """Counters, rates, latencies, facts and issues of one node (see module docstring)."""

    def __init__(self, name: str, hardware_id: str = "", period_s: float = 1.0,
                 issue_ttl_s: float = 3.0, stall_s: float = 5.0, window_s: float = 5.0) -> None:
        self.name, self.hardware_id = name, hardware_id
        self.period_s, self.issue_ttl_s, self.stall_s = period_s, issue_ttl_s, stall_s
        self.counters: Dict[str, int] = {}
        self.rates: Dict[str, RateMeter] = {}
        self.latency: Dict[str, Stats] = {}
        self.facts: Dict[str, str] = {}
        self.issues: Dict[str, Tuple[int, str, float]] = {}
        self._window_s = window_s
        self._last_publish = -math.inf
        self._last_event: Dict[str, float] = {}

    # -------------------------------------------------------------------------- recording
    def count(self, key: str, now: float, n: int = 1) -> None:
        """Add ``n`` to counter ``key`` and tick its rate."""
        self.counters[key] = self.counters.get(key, 0) + n
        self.rates.setdefault(key, RateMeter(self._window_s)).tick(now)
        self._last_event[key] = now

    def latency_ms(self, stage: str, ms: float) -> None:
        self.latency.setdefault(stage, Stats()).add(ms)

    def fact(self, key: str, value) -> None:
        self.facts[key] = str(value)

    def report(self, key: str, level: int, message: str, now: float) -> None:
        """Raise (or refresh) issue ``key``; it clears ``issue_ttl_s`` after the last report."""
        self.issues[key] = (int(level), str(message), now)

    def clear(self, key: str) -> None:
        self.issues.pop(key, None)

    def active_issues(self, now: float) -> List[Tuple[str, int, str]]:
        for k in [k for k, (_, _, t) in self.issues.items() if now - t > self.issue_ttl_s]:
            del self.issues[k]
        return sorted(((k, lv, m) for k, (lv, m, _) in self.issues.items()),
                      key=lambda x: (-x[1], x[0]))

    def last_event(self, key: str) -> Optional[float]:
        return self._last_event.get(key)

    # -------------------------------------------------------------------------- output
    def due(self, now: float) -> bool:
        """True (and re-armed) when ``period_s`` has passed since the last publication."""
        if now - self._last_publish >= self.period_s:
            self._last_publish = now
            return True
        return False

    def status(self, now: float, input_key: str = "input", output_key: str = "processed"
               ) -> Tuple[int, str, List[KeyValue]]:
        """(level, message, values) of the node at ``now``."""
        issues = self.active_issues(now)
        level = max([lv for _, lv, _ in issues], default=OK)
        msgs = [m for _, _, m in issues]
        t_in, t_out = self._last_event.get(input_key), self._last_event.get(output_key)
        if t_in is not None and now - t_in < self.stall_s and \
                (t_out is None or now - t_out > self.stall_s):
            level = ERROR
            msgs.insert(0, f"input arrives but nothing was processed for more than "
                           f"{self.stall_s:.0f} s")
        values = [KeyValue(key=k, value=str(v)) for k, v in sorted(self.counters.items())]
        for k, meter in sorted(self.rates.items()):
            values.append(KeyValue(key=f"{k} rate [Hz]", value=f"{meter.rate(now):.2f}"))
        for stage, st in sorted(self.latency.items()):
            s = st.summary()
            values.append(KeyValue(key=f"{stage} latency p50/p95/max [ms]",
                                   value=f"{s['p50']:.1f} / {s['p95']:.1f} / {s['max']:.1f}"))
        values += [KeyValue(key=k, value=v) for k, v in sorted(self.facts.items())]
        values += [KeyValue(key=f"issue: {k}", value=m) for k, _, m in issues]
        message = "; ".join(msgs) if msgs else "OK"
        return level, message, values

    def build(self, now: float, stamp=None, **status_kwargs) -> DiagnosticArray:
        level, message, values = self.status(now, **status_kwargs)
        st = DiagnosticStatus(level=_LEVEL_BYTES[level], name=self.name, message=message,
                              hardware_id=self.hardware_id)
        st.values = values
        arr = DiagnosticArray()
        if stamp is not None:
            arr.header.stamp = stamp
        arr.status = [st]
        return arr


def level_of(status: DiagnosticStatus) -> int:
    """Integer level (0 OK, 1 WARN, 2 ERROR, 3 STALE) of a DiagnosticStatus."""
    lv = status.level
    return lv[0] if isinstance(lv, (bytes, bytearray)) else int(lv)
