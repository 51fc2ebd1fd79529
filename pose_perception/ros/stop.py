"""SIGINT and SIGTERM as a *stop request* of a node process, so that every node exits 0 whatever
it is doing when the signal comes (importing, loading models, spinning, publishing, shutting
down). Imports nothing heavy (no rclpy): the entry scripts install it before anything else.

Why not rclpy's own signal handlers: they shut the ROS context down from a thread of their own
while the main thread may be inside the executor, a timer callback or a ``publish``; that thread
then fails with whatever error the half-destroyed context gives ("Unable to convert call argument
'0' to Python object", "context is invalid", ...). Here the context is shut down only by the main
thread, after the executor has stopped:

- until the node is built (imports, ``rclpy.init``, model loading) a signal raises
  ``KeyboardInterrupt`` in the main thread (``interruptible``), which the entry point turns into
  exit code 0;
- while spinning (:meth:`StopRequest.deferred`) a signal only sets :attr:`StopRequest.signum`;
  the spin loop polls it (every 0.1 s) and returns;
- during the clean-up a further signal (``ros2 launch`` follows SIGINT with SIGTERM after a
  while) is only recorded.
"""
from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading
from typing import Iterator, List, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The process's stop request (one per process: :data:`STOP`)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None        # the first stop signal received
        self.interruptible = True                # raise KeyboardInterrupt on a signal
        self.installed = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def install(self) -> "StopRequest":
        """Handle SIGINT and SIGTERM (idempotent; main thread only, as Python requires)."""
        if not self.installed and threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                signal.signal(s, self._handler)
            self.installed = True
        return self

    def _handler(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if self.interruptible:
            self.interruptible = False           # once: the clean-up is not interrupted
            raise KeyboardInterrupt(signal.Signals(signum).name)

    @contextlib.contextmanager
    def deferred(self) -> Iterator["StopRequest"]:
        """Inside: a signal only sets :attr:`signum` (poll :attr:`requested`). A request that
        came in just before entering raises ``KeyboardInterrupt`` here, as it would have."""
        self.interruptible = False
        if self.requested:
            raise KeyboardInterrupt(signal.Signals(self.signum).name)
        yield self

    def finishing(self) -> None:
        """From now on signals are only recorded (the clean-up runs to its end)."""
        self.interruptible = False


STOP = StopRequest()


def run_entry(module: str, argv: Optional[List[str]] = None) -> int:
    """Entry point of a node executable: handle stop signals first, then import ``module`` and
    call its ``main(argv)``. A stop signal before the node is up (during the imports) exits 0."""
    STOP.install()
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        return 0
    except Exception:
        # an extension module interrupted in its initialisation reports an ImportError (Cython:
        # "cannot initialise module strings") instead of the KeyboardInterrupt
        if STOP.requested:
            return 0
        raise
    return int(main(sys.argv[1:] if argv is None else argv) or 0)
