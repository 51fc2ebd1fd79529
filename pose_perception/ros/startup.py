"""Where a node process's start-up time goes: named marks on the process's own clock (seconds
since the process started, from /proc on Linux, so the interpreter's start and the imports
count), summarised in the node's "ready" log line and in /diagnostics."""
from __future__ import annotations

import math
import os
import time
from typing import List, Optional, Set, Tuple


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
    """``mark(name)`` at the end of each start-up phase; :meth:`summary` lists the phases.

    Several nodes in one process (``one_process``, a test): each takes :meth:`begin` when its
    construction starts and passes it to :meth:`phases` / :meth:`summary`, which then list the
    process's own marks (``process=True``: interpreter, rclpy.init) and that node's marks only,
    its first phase counted from its begin."""

    def __init__(self) -> None:
        self.marks: List[Tuple[str, float]] = []
        self._process_marks: Set[int] = set()     # indices into marks
        age = process_age_s()
        # the process's start on the monotonic clock (without /proc: this module's import)
        self._t0_mono = time.monotonic() - (age if math.isfinite(age) else 0.0)

    def age_s(self) -> float:
        return time.monotonic() - self._t0_mono

    def mark(self, name: str, process: bool = False) -> float:
        age = self.age_s()
        if process:
            self._process_marks.add(len(self.marks))
        self.marks.append((name, age))
        return age

    def begin(self) -> Tuple[int, float]:
        """A node's start: (index of its first mark to come, seconds since the process start)."""
        return len(self.marks), self.age_s()

    def phases(self, since: Optional[Tuple[int, float]] = None) -> List[Tuple[str, float]]:
        """(phase, seconds) for every mark: the time since the previous mark (or the start);
        ``since`` (from :meth:`begin`): the process's marks before it, then the node's own."""
        out, prev = [], 0.0
        for i, (name, age) in enumerate(self.marks):
            if since is not None and i == since[0]:
                prev = since[1]
            if since is None or i >= since[0] or i in self._process_marks:
                out.append((name, age - prev))
            prev = age
        return out

    def summary(self, since: Optional[Tuple[int, float]] = None) -> str:
        """E.g. ``"4.3 s since the process started: interpreter + imports 1.4 s, rclpy.init
        0.1 s, models 2.6 s"``."""
        phases = self.phases(since)
        if not phases:
            return "no marks"
        parts = ", ".join(f"{name} {dt:.1f} s" for name, dt in phases)
        return f"{self.marks[-1][1]:.1f} s since the process started: {parts}"


CLOCK = StartupClock()
