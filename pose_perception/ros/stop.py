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
  while) is only recorded;
- after a stop request the node executables end with ``os._exit`` once the node is destroyed and
  the context shut down (:func:`exit_now`), without the interpreter's finalisation: native
  threads (DDS, onnxruntime) still running then made it crash now and then ("PyThreadState_Get:
  the GIL is released ... finalizing", SIGSEGV), and the exception that interrupted a start-up
  is kept (:meth:`StopRequest.keep`) so that the half-built node in its frames is never
  collected (collecting it crashed too);
- a ``KeyboardInterrupt`` raised while the main thread runs code whose exceptions Python only
  reports (a weakref callback such as importlib's module-lock clean-up, a ``__del__``) would be
  printed as "Exception ignored ... KeyboardInterrupt" and lost: the unraisable-exception hook
  recognises it (:class:`StopInterrupt`), prints nothing and delivers the signal again, so it is
  raised at the next point where it can stop the start-up;
- nor may it escape from a C extension's initialisation (a signal while ``onnx`` was being
  imported crashed pose_node with SIGSEGV): a signal that comes while the main thread is inside
  one (:attr:`StopRequest.unsafe_codes`) is delivered again once it has returned.
"""
from __future__ import annotations

import _thread
import contextlib
import faulthandler
import importlib
import importlib.machinery
import logging
import os
import signal
import sys
import threading
import time
from types import CodeType
from typing import Iterator, List, Optional, Tuple

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopInterrupt(KeyboardInterrupt):
    """The ``KeyboardInterrupt`` a stop signal raises (``except KeyboardInterrupt`` catches it)."""


def _extension_loading_codes() -> Tuple[CodeType, ...]:
    """The frames of importlib that run a C extension module's initialisation."""
    loader = importlib.machinery.ExtensionFileLoader
    return (loader.create_module.__code__, loader.exec_module.__code__)


class StopRequest:
    """The process's stop request (one per process: :data:`STOP`)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None        # the first stop signal received
        self.interruptible = True                # raise KeyboardInterrupt on a signal
        self.installed = False
        self._kept: List[object] = []
        self._next_unraisable_hook = sys.unraisablehook
        self._redelivering = False               # a helper thread will deliver the signal again
        # frames a KeyboardInterrupt must not escape from: a C extension's initialisation
        # (importing onnx interrupted there crashed with SIGSEGV)
        self.unsafe_codes: Tuple[CodeType, ...] = _extension_loading_codes()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def install(self) -> "StopRequest":
        """Handle SIGINT and SIGTERM (idempotent; main thread only, as Python requires)."""
        if not self.installed and threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                signal.signal(s, self._handler)
            self._next_unraisable_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
            self.installed = True
        return self

    def _handler(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if not self.interruptible or self._redelivering:
            return
        if _runs(frame, self.unsafe_codes):
            # an exception here would escape an extension's initialisation: raise it afterwards
            self._redeliver_after(self.unsafe_codes)
            return
        self.interruptible = False               # once: the clean-up is not interrupted
        raise StopInterrupt(signal.Signals(signum).name)

    def _unraisable(self, unraisable) -> None:
        """``sys.unraisablehook``: our interrupt, swallowed where Python only reports exceptions,
        is raised again instead of printed (a handler run inside the hook would only be reported
        in turn, so it runs once the hook has returned)."""
        if isinstance(unraisable.exc_value, StopInterrupt) and self.signum is not None:
            self.interruptible = True
            self._redeliver_after((StopRequest._unraisable.__code__,))
            return
        self._next_unraisable_hook(unraisable)

    def _redeliver_after(self, codes: Tuple[CodeType, ...]) -> None:
        """Deliver the stop signal to the main thread again once none of ``codes`` is on its
        stack (from a helper thread; meanwhile further signals are only recorded)."""
        self._redelivering = True
        main = threading.main_thread().ident

        def redeliver() -> None:
            while _runs(sys._current_frames().get(main), codes):
                time.sleep(0.001)
            self._redelivering = False
            _thread.interrupt_main(self.signum)

        threading.Thread(target=redeliver, name="stop-request", daemon=True).start()

    @contextlib.contextmanager
    def deferred(self) -> Iterator["StopRequest"]:
        """Inside: a signal only sets :attr:`signum` (poll :attr:`requested`). A request that
        came in just before entering raises ``KeyboardInterrupt`` here, as it would have."""
        self.interruptible = False
        if self.requested:
            raise StopInterrupt(signal.Signals(self.signum).name)
        yield self

    def keep(self, obj: object) -> None:
        """Hold ``obj`` until the process ends (the exception that interrupted a start-up: its
        traceback's frames hold half-built native objects whose clean-up can crash)."""
        self._kept.append(obj)

    def finishing(self) -> None:
        """From now on signals are only recorded (the clean-up runs to its end)."""
        self.interruptible = False


STOP = StopRequest()


def _runs(frame, codes: Tuple[CodeType, ...]) -> bool:
    """Whether one of ``codes`` is on the stack that ends in ``frame``."""
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def run_entry(module: str, argv: Optional[List[str]] = None) -> int:
    """Entry point of a node executable: handle stop signals first, then import ``module`` and
    call its ``main(argv)``. A stop signal before the node is up (during the imports) exits 0."""
    STOP.install()
    faulthandler.enable()     # a crash prints every thread's Python stack on stderr
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        exit_now(0)
    except Exception:
        # an extension module interrupted in its initialisation reports an ImportError (Cython:
        # "cannot initialise module strings") instead of the KeyboardInterrupt
        if STOP.requested:
            exit_now(0)
        raise
    code = int(main(sys.argv[1:] if argv is None else argv) or 0)
    if STOP.requested:
        exit_now(code)
    return code


@contextlib.contextmanager
def exit_if_stuck(limit_s: float, what: str, code: int = 0) -> Iterator[None]:
    """End the process with ``code`` if the block has not finished ``limit_s`` seconds after it
    began, saying so on stderr. For the ROS middleware's teardown: Fast DDS 3.2 (the Kilted
    wheels) can deadlock while it deletes a participant whose TCP transport
    (``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``) has a reader thread waiting for a message from a
    peer that is alive but silent: ``TCPChannelResourceBasic::disconnect`` waits for the mutex
    that the reader holds while it waits (fixed upstream by eProsima/Fast-DDS pull request
    6066). Seen once in ``bench-ros`` (its own participant, ``rcl_node_fini``); every node
    process is exposed to it when it stops while its peers run on."""
    done = threading.Event()

    def watch() -> None:
        if done.wait(limit_s):
            return
        message = (f"{os.path.basename(sys.argv[0]) or 'python'}: {what} did not finish in "
                   f"{limit_s:g} s (most likely the ROS middleware's teardown: a known Fast "
                   f"DDS deadlock in its TCP transport, eProsima/Fast-DDS#6066); exiting now\n")
        try:                     # no locks: the stuck thread may hold the streams' or logging's
            os.write(2, message.encode())
        except OSError:
            pass
        os._exit(code)

    threading.Thread(target=watch, name="exit-if-stuck", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def exit_now(code: int) -> None:
    """End the process at once with ``code`` after flushing the logs and standard streams: no
    interpreter finalisation (see the module docstring)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or broken pipe: nothing more to say
            pass
    os._exit(code)
