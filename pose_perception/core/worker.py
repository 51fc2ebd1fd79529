"""A one-thread worker for running one stage beside another, and per-stage timing. ROS-free."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from typing import Dict, Iterator, Optional


def ms_since(t: float) -> float:
    """Milliseconds since ``time.perf_counter()`` gave ``t``."""
    return (time.perf_counter() - t) * 1e3


@contextmanager
def timed(timings_ms: Dict[str, float], stage: str) -> Iterator[None]:
    """Add the time the ``with`` block takes to ``timings_ms[stage]`` (ms)."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings_ms[stage] = timings_ms.get(stage, 0.0) + ms_since(t)


class Job:
    """``fn(*args)`` run on ``pool``'s thread (or at once without a pool); ``result()`` gives
    ``(value, milliseconds the call took)`` and re-raises its exception."""

    def __init__(self, fn, args, pool: Optional[ThreadPoolExecutor]) -> None:
        def timed():
            t = time.perf_counter()
            return fn(*args), ms_since(t)
        if pool is None:
            self._future = None
            try:
                self._value, self._error = timed(), None
            except Exception as exc:  # re-raised by result(), as a future would
                self._value, self._error = None, exc
        else:
            self._future = pool.submit(timed)

    def result(self):
        if self._future is not None:
            return self._future.result()
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self) -> None:
        """Wait for the call to end (its outcome is not needed any more)."""
        if self._future is not None:
            futures_wait([self._future])
