"""The one entry point of every node's ``main()``: ``--help``, rclpy start-up, clear one-line
errors for bad parameters or missing models (exit code 1), clean shutdown on Ctrl-C or an
external shutdown."""
from __future__ import annotations

import sys
from typing import Callable, List, Optional, Sequence, Tuple, Type

import rclpy

# ParameterError (parameter validation) is a ValueError; ModelNotFoundError a FileNotFoundError
USER_ERRORS: Tuple[Type[BaseException], ...] = (ValueError, RuntimeError, FileNotFoundError)


def run_node(name: str, usage: str, factory: Callable[[], "rclpy.node.Node"],
             argv: Optional[Sequence[str]] = None,
             spin: Optional[Callable[["rclpy.node.Node"], None]] = None) -> int:
    """Start rclpy with ``argv`` (ROS arguments), build the node with ``factory``, spin it (or
    call ``spin(node)``), and shut down cleanly. Returns the process exit code."""
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(usage)
        return 0
    rclpy.init(args=[name] + args)
    node = None
    try:
        node = factory()
        (spin or rclpy.spin)(node)
    except USER_ERRORS as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        if type(exc).__name__ != "ExternalShutdownException":
            raise
    finally:
        try:
            if node is not None:
                node.destroy_node()
            if rclpy.ok():
                rclpy.shutdown()
        except KeyboardInterrupt:
            pass
    return 0
