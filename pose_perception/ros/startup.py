"""Where a node process's start-up time goes: named marks on the process's own clock (seconds
since the process started, from /proc on Linux, so the interpreter's start and the imports
count), summarised in the node's "ready" log line and in /diagnostics."""
from __future__ import annotations

import math
import os
import time
from typing import List, Tuple


def process_age_s() -> float:
    """Seconds since this process started (NaN where /proc is not there)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = float(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


class StartupClock:
    """``mark(name)`` at the end of each start-up phase; :meth:`summary` lists the phases."""

    def __init__(self) -> None:
        self.marks: List[Tuple[str, float]] = []
        age = process_age_s()
        # the process's start on the monotonic clock (without /proc: this module's import)
        self._t0_mono = time.monotonic() - (age if math.isfinite(age) else 0.0)

    def age_s(self) -> float:
        return time.monotonic() - self._t0_mono

    def mark(self, name: str) -> float:
        age = self.age_s()
        self.marks.append((name, age))
        return age

    def phases(self) -> List[Tuple[str, float]]:
        """(phase, seconds) for every mark: the time since the previous mark (or the start)."""
        out, prev = [], 0.0
        for name, age in self.marks:
            out.append((name, age - prev))
            prev = age
        return out

    def summary(self) -> str:
        """E.g. ``"4.3 s: interpreter + imports 1.4 s, rclpy.init 0.1 s, models 2.6 s"``."""
        if not self.marks:
            return "no marks"
        parts = ", ".join(f"{name} {dt:.1f} s" for name, dt in self.phases())
        return f"{self.marks[-1][1]:.1f} s since the process started: {parts}"


CLOCK = StartupClock()
