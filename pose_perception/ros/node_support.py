"""What the nodes share: the camera and depth input parameters (same names, defaults and meaning
in every node that reads a camera), the QoS profiles, and the rate-limited log of problems."""
from __future__ import annotations

import re
from typing import Callable, Dict

from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from . import compat
from .diagnostics import NodeDiagnostics, RateLimitedLog
from .params import ParamSpec, at_least, non_negative, positive

# numbers in a problem's text (stamps, sizes) do not make it another kind of problem
_DIGITS = re.compile(r"[0-9][0-9.e+-]*")


def camera_param_specs() -> Dict[str, ParamSpec]:
    """The camera/depth input parameters by name (each node lists the ones it reads)."""
    S = ParamSpec
    specs = [
        S("camera_namespace", "/camera", "str",
          "prefix of the four input topics below when they are relative"),
        S("color_info_topic", "color/camera_info", "str", "CameraInfo of the colour image"),
        S("depth_image_topic", "aligned_depth_to_color/image_raw", "str",
          "depth image: 16UC1 (millimetres by default) or 32FC1 (metres)"),
        S("depth_info_topic", "aligned_depth_to_color/camera_info", "str",
          "CameraInfo of the depth image"),
        S("depth_registered", True, "bool",
          "true: depth is registered/aligned to the colour image (any resolution); false: depth "
          "is in its own camera frame and is reprojected with the depth->colour transform (TF)"),
        S("depth_unit_scale", 0.0, "float", "metres per depth unit; 0 = encoding default "
          "(16UC1: 0.001, 32FC1: 1)", check=non_negative),
        S("depth_min_m", 0.1, "float", "depth readings nearer than this are ignored",
          check=non_negative),
        S("depth_max_m", 10.0, "float", "depth readings farther than this are ignored",
          check=positive),
        S("qos_reliability", "best_effort", "str", "QoS reliability of the image and CameraInfo "
          "subscriptions", choices=("best_effort", "reliable")),
        S("qos_depth", 5, "int", "QoS history depth of the image subscriptions",
          check=at_least(1)),
        S("tf_timeout_s", 0.05, "float", "how long to wait for a transform [s]",
          check=non_negative),
        S("static_transforms", [], "str_list",
          "extra static transforms 'parent child x y z qx qy qz qw' (or 'x y z roll pitch yaw'),"
          " e.g. the depth->colour extrinsics when no TF publishes them"),
        S("log_period_s", 5.0, "float", "a repeated warning is logged at most this often [s]",
          check=positive),
    ]
    return {s.name: s for s in specs}


def sensor_qos(reliability: str, depth: int) -> QoSProfile:
    """Camera image subscriptions: keep the last ``depth``, ``'best_effort'`` or ``'reliable'``."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=_reliability(reliability),
                      durability=QoSDurabilityPolicy.VOLATILE)


def camera_info_qos(reliability: str) -> QoSProfile:
    return QoSProfile(depth=2, reliability=_reliability(reliability))


def output_qos(depth: int = 5) -> QoSProfile:
    """The nodes' outputs: reliable publishers reach reliable and best-effort subscribers."""
    return QoSProfile(depth=depth, reliability=QoSReliabilityPolicy.RELIABLE)


def _reliability(name: str) -> QoSReliabilityPolicy:
    return (QoSReliabilityPolicy.BEST_EFFORT if name == "best_effort"
            else QoSReliabilityPolicy.RELIABLE)


def tf_and_node_diagnostics(node, static_transforms):
    """(TF buffer, its listener, the node's own NodeDiagnostics) of a node that reads 3D in
    other frames (static_transforms: the parameter's strings)."""
    buffer, listener = compat.create_tf_buffer(node, static_transforms)
    diag = NodeDiagnostics(f"pose_perception: {node.get_name()}",
                           hardware_id=node.get_fully_qualified_name(), period_s=1.0,
                           stall_s=float("inf"))
    return buffer, listener, diag


def rate_limited_log(logger, period_s: float) -> RateLimitedLog:
    """``log(key, level, text)`` to an rclpy logger, each key at most once per ``period_s``."""
    return RateLimitedLog(_log_to(logger), period_s)


def problem_key(kind: str, text: str) -> str:
    """The rate-limit key of a problem: its kind and its text without the numbers."""
    return kind + ":" + _DIGITS.sub("#", text)[:200]


def _log_to(logger) -> Callable[[str, str], None]:
    def log(level: str, text: str) -> None:
        # one call site per severity: rclpy refuses a call site that changes severity
        if level == "error":
            logger.error(text)
        elif level == "warn":
            logger.warning(text)
        else:
            logger.info(text)
    return log
