"""Two frames at once: frame N is finished on a second thread while the models of frame N+1 run
(ROS-free).

:meth:`Perception.process <pose_perception.core.perception.Perception.process>` is
:meth:`~pose_perception.core.perception.Perception.detect` (the keypoint models) then
:meth:`~pose_perception.core.perception.Perception.finish` (3D lifting, tracking, interaction,
body language: numpy and Python, no model). Run one after the other, the CPU cores wait on the
Python half while no model runs. :class:`OverlappedPerception` runs frame N's ``finish`` (and
whatever the caller does with its result, e.g. publishing) on its own thread while the calling
thread detects frame N+1: the models release the GIL, so the two halves share the cores.

- The frame rate rises towards the models' own; a frame's two halves still run one after the
  other, plus the wait for the previous frame's finish. Where the models run on the CPU, the two
  halves also take cores from each other: on 2 cores (README, Performance) the rate rose by
  9-15 % and the latency by 30-50 %, so the data published is older on average. Where the models
  run on a GPU the finishing thread has the CPU to itself. :func:`overlap_wanted` decides from
  the ``frame_overlap`` mode (``auto``: on GPU execution providers only).
- Frames are finished in the order submitted, one at a time, and at most one frame waits:
  :meth:`OverlappedPerception.submit` hands frame N on only after frame N-1 is finished, so
  nothing queues up.
- Nothing is shared between the halves but the frame's result: the keypoint stage keeps its own
  crop tracks, ``finish`` the id tracks and filters; the robot's point and the up direction are
  taken per frame at submission (the caller may change them between frames).
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

import numpy as np

from .camera import CameraModel
from .inference import GPU_PROVIDERS
from .types import FrameResult
from .worker import ms_since

OVERLAP_MODES = ("auto", "always", "never")

ResultFn = Callable[[FrameResult, Any], None]
ErrorFn = Callable[[BaseException, Any], None]


def overlap_wanted(mode: str, provider: str) -> bool:
    """Whether frames are overlapped: ``always``, ``never``, or ``auto``: when the models run on
    a GPU execution provider (``provider``: the one in use)."""
    if mode not in OVERLAP_MODES:
        raise ValueError(f"frame_overlap must be one of {', '.join(OVERLAP_MODES)}, not {mode!r}")
    return mode == "always" or (mode == "auto" and provider in GPU_PROVIDERS)


class OverlappedPerception:
    """Runs :meth:`Perception.detect` on the calling thread and :meth:`Perception.finish`, then
    ``on_result(result, context)``, on one worker thread (see the module docstring).

    ``on_error(exception, context)`` receives what ``finish`` or ``on_result`` raised; without
    it the exception is raised by the next :meth:`submit` / :meth:`flush`.
    ``result.timings_ms['total']`` is the frame's latency: from the start of its ``detect`` to
    the end of its ``finish``."""

    def __init__(self, perception, on_result: ResultFn,
                 on_error: Optional[ErrorFn] = None) -> None:
        self.perception = perception
        self._on_result = on_result
        self._on_error = on_error
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="perception_finish")
        self._pending: Optional[Future] = None

    def submit(self, rgb: np.ndarray, stamp_s: float, depth_m: Optional[np.ndarray] = None,
               camera: Optional[CameraModel] = None,
               depth_camera: Optional[CameraModel] = None, context: Any = None,
               attention_target=None, up=None) -> None:
        """Detect this frame now, then hand it to the finishing thread once the previous frame
        is finished. ``attention_target`` / ``up``: this frame's (default: the perception's
        attributes now). Exceptions of ``detect`` are raised here (the frame is dropped)."""
        t0 = time.perf_counter()
        per = self.perception
        target = per.attention_target if attention_target is None else attention_target
        up = per.up if up is None else up
        result = per.detect(rgb, stamp_s, depth_m, camera, depth_camera)
        self.flush()
        self._pending = self._pool.submit(self._finish, result, stamp_s, depth_m, camera,
                                          depth_camera, target, up, t0, context)

    def flush(self) -> None:
        """Wait until the frame handed on last is finished (and its ``on_result`` returned)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Finish the frame in hand, then stop the thread (the perception stays open)."""
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)

    def _finish(self, result: FrameResult, stamp_s: float, depth_m, camera, depth_camera,
                target, up, t0: float, context: Any) -> None:
        try:
            self.perception.finish(result, stamp_s, depth_m, camera, depth_camera,
                                   attention_target=target, up=up)
            result.timings_ms["total"] = ms_since(t0)
            self._on_result(result, context)
        except Exception as exc:
            if self._on_error is None:
                raise
            self._on_error(exc, context)
