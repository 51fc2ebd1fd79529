"""A one-thread worker for running one stage beside another, and per-stage timing. ROS-free."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from dataclasses import dataclass
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


class InferenceClock:
    """Wall time during which at least one model runs, summed over the process: every
    ``OnnxModel.run`` enters and leaves it. Two models running at once on two threads count
    once, so that ``frame time - inference`` is the time of the frame in which no model ran
    (crops, decoding, lifting, tracking, ...). Each named model's own runs are also counted
    (:meth:`by_model`: calls, inputs, milliseconds; two models' times may overlap). The cost is
    one lock per model run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0
        self._total = 0.0
        self._models: Dict[str, ModelTime] = {}

    @contextmanager
    def running(self, model: str = "", inputs: int = 1) -> Iterator[None]:
        """Around one model run; ``model`` (its name) and ``inputs`` (its batch size) count it
        in :meth:`by_model`."""
        with self._lock:
            t0 = time.perf_counter()
            if self._active == 0:
                self._since = t0
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                t1 = time.perf_counter()
                self._active -= 1
                if self._active == 0:
                    self._total += t1 - self._since
                if model:
                    m = self._models.setdefault(model, ModelTime())
                    m.calls += 1
                    m.inputs += int(inputs)
                    m.ms += (t1 - t0) * 1e3

    def total_ms(self) -> float:
        """Milliseconds with some model running so far (runs still going count up to now)."""
        with self._lock:
            busy = time.perf_counter() - self._since if self._active else 0.0
            return (self._total + busy) * 1e3

    def by_model(self) -> Dict[str, "ModelTime"]:
        """A copy of each model's count so far (runs still going are not in it)."""
        with self._lock:
            return {k: ModelTime(v.calls, v.inputs, v.ms) for k, v in self._models.items()}


@dataclass
class ModelTime:
    """One model's runs: how many, on how many inputs (summed batch sizes), for how long."""

    calls: int = 0
    inputs: int = 0
    ms: float = 0.0

    def since(self, before: Optional["ModelTime"]) -> "ModelTime":
        """The runs after the count ``before`` (None: all)."""
        b = before or ModelTime()
        return ModelTime(self.calls - b.calls, self.inputs - b.inputs, self.ms - b.ms)


INFERENCE_CLOCK = InferenceClock()
