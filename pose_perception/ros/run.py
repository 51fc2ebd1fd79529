"""The one entry point of every node's ``main()``: ``--help``, rclpy start-up, clear one-line
errors for bad parameters or missing models (exit code 1), and exit code 0 on SIGINT / SIGTERM
at any moment or on an external shutdown (see :mod:`pose_perception.ros.stop`).

The nodes spin on ``SingleThreadedExecutor``. ``POSE_PERCEPTION_EXECUTOR=events`` opts in to
rclpy's ``EventsExecutor`` (Jazzy and newer): it hands each message over from a C++ queue,
where the single-threaded one rebuilds its wait set in Python for every callback (pose_node's
executor thread: 5.8 % instead of 12.7 % of a core at 30 Hz colour + depth + CameraInfo), but it
is experimental in rclpy and a node on it once hung at shutdown in our stop cycles
(``test/stop_cycles.py``), so it is not the default (README "Performance")."""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Callable, List, Optional, Sequence, Tuple, Type

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .startup import CLOCK
from .stop import STOP, exit_if_stuck

# ParameterError (parameter validation) is a ValueError; ModelNotFoundError a FileNotFoundError;
# rclpy's RCLError (e.g. unparsable --ros-args) a RuntimeError
USER_ERRORS: Tuple[Type[BaseException], ...] = (ValueError, RuntimeError, FileNotFoundError)
SPIN_POLL_S = 0.1          # how often the spin loop looks at the stop request
EXECUTOR_ENV = "POSE_PERCEPTION_EXECUTOR"   # 'single' (default) or 'events'
EXECUTORS = ("events", "single")
LINGER_S = 0.2             # a node that finished by itself: time for its last messages to leave
# the node's clean-up (its worker may finish a frame: up to 3 s) and the middleware's teardown
# must end in this time, else the process exits 0 anyway (stop.exit_if_stuck: a Fast DDS
# deadlock); below ros2 launch's 5 s between SIGINT and SIGTERM
SHUTDOWN_LIMIT_S = 4.5


def run_node(name: str, usage: str, factory: Callable[[], "rclpy.node.Node"],
             argv: Optional[Sequence[str]] = None,
             until: Optional[Callable[["rclpy.node.Node"], bool]] = None) -> int:
    """Start rclpy with ``argv`` (ROS arguments), build the node with ``factory`` (or several:
    ``factory`` may return a list, spun together on one executor), spin until a stop signal, an
    external shutdown or ``until(node)``, and shut down cleanly. Returns the process exit code:
    0, or 1 for a user error (bad parameters, missing models) reported on stderr in one line."""
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(usage)
        return 0
    STOP.install()
    CLOCK.mark("interpreter + imports", process=True)
    node = None
    try:
        # rclpy's own handlers would shut the context down from another thread while this one
        # may be using it: the stop request handles both signals instead
        rclpy.init(args=[name] + args, signal_handler_options=SignalHandlerOptions.NO)
        CLOCK.mark("rclpy.init", process=True)
        kind = executor_kind()               # a bad override fails before the node is built
        node = factory()
        with STOP.deferred():
            _spin(_as_list(node), until, kind)
    except KeyboardInterrupt as exc:
        STOP.keep(exc)          # never collect what it interrupted (a half-built node)
    except USER_ERRORS as exc:
        if not STOP.requested:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        STOP.keep(exc)
    except Exception as exc:
        if not STOP.requested and type(exc).__name__ != "ExternalShutdownException":
            raise
        STOP.keep(exc)
    finally:
        STOP.finishing()
        _shut_down(_as_list(node))
    return 0


def _as_list(node) -> list:
    return [] if node is None else list(node) if isinstance(node, (list, tuple)) else [node]


def executor_kind(environ=os.environ) -> str:
    """'single' (the default) or 'events' (rclpy's EventsExecutor) as the environment variable
    ``POSE_PERCEPTION_EXECUTOR`` asks (ValueError for another value; 'events' falls back to
    'single' with a warning where this rclpy lacks it)."""
    wanted = environ.get(EXECUTOR_ENV, "").strip().lower() or "single"
    if wanted not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={wanted!r}: expected one of {', '.join(EXECUTORS)}")
    if wanted == "events" and _events_executor() is None:
        logging.getLogger(__name__).warning(
            "%s=events but this rclpy has no EventsExecutor: using SingleThreadedExecutor",
            EXECUTOR_ENV)
        return "single"
    return wanted


def _events_executor():
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


def make_executor(context, kind: Optional[str] = None):
    """The executor ``executor_kind`` chooses (or ``kind``), on ``context``."""
    kind = kind or executor_kind()
    if kind == "events":
        return _events_executor()(context=context)
    return SingleThreadedExecutor(context=context)


def _spin(nodes: list, until: Optional[Callable], kind: str) -> None:
    executor = make_executor(nodes[0].context, kind)
    nodes[0].get_logger().info("spinning on rclpy's " + ("EventsExecutor" if kind == "events"
                                                         else "SingleThreadedExecutor"))
    for node in nodes:
        executor.add_node(node)
    try:
        while not STOP.requested and nodes[0].context.ok():
            if until is not None and until(nodes[0]):
                time.sleep(LINGER_S)
                return
            executor.spin_once(timeout_sec=SPIN_POLL_S)
    finally:
        executor.shutdown(timeout_sec=0)


def _shut_down(nodes: list) -> None:
    """Destroy the nodes, then the context; after a stop request nothing here may fail the exit
    code (a node may have been half built when the signal came). A teardown stuck in the
    middleware ends the process with exit code 0 after ``SHUTDOWN_LIMIT_S``."""
    with exit_if_stuck(SHUTDOWN_LIMIT_S, "shutting the node down", 0):
        try:
            for node in nodes:
                node.destroy_node()
        except Exception:
            if not STOP.requested:
                raise
        finally:
            rclpy.try_shutdown()
