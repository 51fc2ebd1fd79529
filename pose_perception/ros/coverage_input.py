"""Multi-camera coverage for the safety monitor node (a helper of ``safety_monitor_node``).

Each camera of ``coverage_cameras`` gives its viewing volume from its CameraInfo
(``<namespace>/<coverage_info_topic>``, or its entry of ``coverage_info_topics``) and TF (the
CameraInfo's frame -> robot_frame, the latest transform: a camera mounted on the robot). The
cameras that observe *now* are those the people_fusion node fused into the incoming
``SkeletonArray`` (its ``cameras`` field); the areas (the safety zones, and the disk of the
warning distance when ``coverage_warning_disk``) that these cameras do not fully observe go to
:meth:`SafetyMonitor.set_coverage`, so a silent camera shrinks the coverage with the first fused
array that lacks it. See :mod:`pose_perception.core.coverage`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo

from ..core.coverage import CameraView, disk_zone, unobserved
from ..core.safety import Zone
from . import compat
from .conversions import camera_info_to_model
from .params import ParamSpec, non_negative, positive, resolve_topic

S = ParamSpec
WARNING_DISK = "warning_distance"


def coverage_specs() -> List[ParamSpec]:
    return [
        S("coverage_cameras", [], "str_list", "camera namespaces whose coverage is checked (the "
          "people_fusion node's cameras); empty: coverage not checked (one camera)"),
        S("coverage_info_topic", "color/camera_info", "str", "CameraInfo topic under each "
          "camera namespace"),
        S("coverage_info_topics", [], "str_list", "one CameraInfo topic per coverage camera, "
          "in order (empty: <namespace>/<coverage_info_topic>)"),
        S("coverage_min_range_m", 0.3, "float", "nearest depth people are measured at [m]",
          check=non_negative),
        S("coverage_max_range_m", 5.0, "float", "farthest depth people are measured at [m]",
          check=positive),
        S("coverage_step_m", 0.2, "float", "sampling step of the areas [m]", check=positive),
        S("coverage_min_radius_m", 0.3, "float", "the robot's own footprint radius: not "
          "sampled [m]", check=non_negative),
        S("coverage_warning_disk", True, "bool", "the disk of the warning distance around the "
          "robot counts as an area to observe"),
    ]


class CoverageInput:
    """Keeps the cameras' views and tells which areas the fresh cameras do not observe."""

    def __init__(self, node, params: Dict, zones: Sequence[Zone], warning_radius_m: float,
                 tf_buffer, robot_frame: str) -> None:
        self.node, self.p = node, params
        self.cameras: List[str] = list(params["coverage_cameras"])
        self.areas = list(zones)
        if params["coverage_warning_disk"]:
            self.areas.append(disk_zone(WARNING_DISK, warning_radius_m))
        self.tf_buffer, self.robot_frame = tf_buffer, robot_frame
        self.views: Dict[str, CameraView] = {}
        self.errors: Dict[str, str] = {}
        self._cache: Tuple[Optional[tuple], List[str]] = (None, [])
        qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE)
        topics = list(params["coverage_info_topics"]) or [
            resolve_topic(ns, params["coverage_info_topic"]) for ns in self.cameras]
        if len(topics) != len(self.cameras):
            raise ValueError(f"'coverage_info_topics' has {len(topics)} topics for "
                             f"{len(self.cameras)} coverage_cameras")
        for ns, topic in zip(self.cameras, topics):
            node.create_subscription(CameraInfo, topic,
                                     lambda msg, ns=ns: self.on_info(ns, msg), qos)

    @property
    def enabled(self) -> bool:
        return bool(self.cameras)

    def on_info(self, ns: str, msg: CameraInfo) -> None:
        try:
            model = camera_info_to_model(msg)
            T = compat.lookup_matrix(self.tf_buffer, self.robot_frame, msg.header.frame_id,
                                     Time(), 0.0)          # the latest: a mounted camera
            view = CameraView(ns, model, T, self.p["coverage_min_range_m"],
                              self.p["coverage_max_range_m"])
        except (ValueError,) + tuple(compat.TF_EXCEPTIONS) as exc:
            self.views.pop(ns, None)
            self.errors[ns] = str(exc)
            return
        old = self.views.get(ns)
        if old is None or not (old.model.same_geometry(model)
                               and (old.T_robot_cam == view.T_robot_cam).all()):
            self.views[ns] = view
            self._cache = (None, [])
        self.errors.pop(ns, None)

    def unobserved(self, fresh: Sequence[str]) -> List[str]:
        """Areas not observed by the cameras ``fresh`` (those of coverage_cameras with a view)."""
        key = tuple(sorted(c for c in fresh if c in self.views and c in self.cameras))
        if self._cache[0] != key:
            views = [self.views[c] for c in key]
            self._cache = (key, unobserved(self.areas, views, self.p["coverage_step_m"],
                                           min_radius_m=self.p["coverage_min_radius_m"]))
        return list(self._cache[1])
