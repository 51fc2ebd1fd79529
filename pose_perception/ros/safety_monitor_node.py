"""``safety_monitor_node``: people's skeletons in, a human-distance ``SafetyStatus`` out at a fixed
rate. A thin layer over :class:`pose_perception.core.safety.SafetyMonitor` (the behaviour is
specified in README.md, "Safety monitor"; this is a monitoring aid, not a certified safety
function).

- Every ``SkeletonArray`` is transformed into ``robot_frame`` with TF at its stamp (empty
  ``robot_frame``: the skeletons' own frame, with 3D distances) and fed to the monitor. A
  missing transform, or a frame published without depth, is an *untrusted* input: UNKNOWN.
- Faces without a body (``faces_topic``; a person so close that only the face is in view) are
  people too: while that topic has a publisher (or sent lately), each SkeletonArray waits for the
  FaceLandmarksArray of the same stamp (at most ``face_wait_s``) and both go to the monitor
  together.
- A timer evaluates the monitor at ``rate_hz`` and publishes the status even when no message
  arrives, so stale perception (a dead camera or pose node) turns into UNKNOWN after
  ``stale_timeout_s``.
- Coverage (several cameras, ``coverage_cameras``): areas (zones, the warning-distance disk)
  that the cameras fused into the input (``SkeletonArray.cameras``) do not observe are never
  CLEAR (``unobserved_area_policy``); see :mod:`pose_perception.ros.coverage_input`.
- Zones: ``zones`` lists names; each zone has ``zones.<name>.kind`` (protective | warning |
  ignore), ``zones.<name>.polygon`` (flat x0, y0, x1, y1, ... in robot_frame) and optional
  ``zones.<name>.z_min`` / ``z_max``. Zones and the closest point are drawn as markers.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..core.safety import SafetyConfig, SafetyMonitor, SafetyState, Zone
from ..msg import FaceLandmarksArray, SafetyStatus, SkeletonArray
from . import compat
from .coverage_input import CoverageInput, coverage_specs
from .conversions import faces_to_observations, observation_point_name, sec_to_stamp, \
    skeletons_to_observations, stamp_to_sec
from .diagnostics import ERROR, WARN
from .node_support import output_qos, tf_and_node_diagnostics
from .params import (ParameterError, ParamSpec, dataclass_specs, declare, non_negative,
                     positive, unknown_errors)
from .run import run_node

S = ParamSpec

NODE_NAME = "safety_monitor"
FACES_LIVE_S = 2.0        # the faces topic counts as live this long after its last message
MAX_EARLY_FACES = 10      # faces messages kept while their skeletons have not come


def _key(stamp) -> Tuple[int, int]:
    return int(stamp.sec), int(stamp.nanosec)


STATE_COLOURS = {SafetyState.UNKNOWN: (0.6, 0.2, 0.8), SafetyState.CLEAR: (0.1, 0.8, 0.2),
                 SafetyState.WARNING: (1.0, 0.7, 0.0), SafetyState.PROTECTIVE_STOP: (1.0, 0.1, 0.1)}
ZONE_COLOURS = {"protective": (1.0, 0.1, 0.1), "warning": (1.0, 0.7, 0.0),
                "ignore": (0.5, 0.5, 0.5)}


def safety_node_specs() -> List[ParamSpec]:
    return [
        S("input_topic", "people/skeletons", "str", "SkeletonArray input"),
        S("faces_topic", "people/faces", "str", "FaceLandmarksArray input: faces without a body "
          "count as people (empty: skeletons only)"),
        S("face_wait_s", 0.1, "float", "how long a SkeletonArray waits for the faces of its "
          "stamp while the faces topic is live [s]", check=non_negative),
        S("status_topic", "safety/status", "str", "SafetyStatus output"),
        S("markers_topic", "safety/markers", "str", "zone / closest-point markers"),
        S("robot_frame", "base_link", "str", "frame distances are measured in (TF from the "
          "skeletons' frame at their stamp); empty = the skeletons' frame with distance_mode "
          "xyz"),
        S("rate_hz", 20.0, "float", "status publication rate [Hz]", check=positive),
        S("tf_timeout_s", 0.05, "float", "how long to wait for a transform [s]",
          check=non_negative),
        S("static_transforms", [], "str_list", "extra static transforms 'parent child x y z qx "
          "qy qz qw' (e.g. base_link -> camera frame when no TF publishes it)"),
        S("require_depth", True, "bool", "a SkeletonArray without depth (depth_used false) is "
          "untrusted (UNKNOWN)"),
        S("publish_markers", True, "bool", "zone and closest-point markers"),
        S("zones", [], "str_list", "zone names; each needs zones.<name>.kind and "
          "zones.<name>.polygon"),
    ] + coverage_specs()


def safety_config_specs() -> List[ParamSpec]:
    return dataclass_specs(SafetyConfig, "", exclude=("zones",))


class SafetyMonitorNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = NODE_NAME, **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.p, self.config = self._read_parameters()
        self.monitor = SafetyMonitor(self.config)
        self.robot_frame = self.p["robot_frame"]
        self.tf_buffer, self._tf_listener, self.diag = tf_and_node_diagnostics(
            self, self.p["static_transforms"])
        c = self.config
        self.coverage = CoverageInput(
            self, self.p, c.zones, c.warning_distance_m + c.robot_radius_m + max(
                0.0, c.protective_separation_m() - c.protective_distance_m),
            self.tf_buffer, self.robot_frame) if self.p["coverage_cameras"] else None
        self._last_msg: Optional[SkeletonArray] = None
        self._frame = self.robot_frame
        # skeletons waiting for the faces of their stamp, and faces that came first
        self._pending: Optional[Tuple[SkeletonArray, float]] = None
        self._early_faces: Dict[Tuple[int, int], FaceLandmarksArray] = {}
        self._faces_rx_s = -math.inf                  # wall time of the last faces message
        out = output_qos()
        self.pub_status = self.create_publisher(SafetyStatus, self.p["status_topic"], out)
        self.pub_markers = (self.create_publisher(MarkerArray, self.p["markers_topic"], out)
                            if self.p["publish_markers"] else None)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(SkeletonArray, self.p["input_topic"], self.on_skeletons, out)
        if self.p["faces_topic"]:
            self.create_subscription(FaceLandmarksArray, self.p["faces_topic"], self.on_faces,
                                     out)
        self.timer = self.create_timer(1.0 / self.p["rate_hz"], self.on_timer)
        self.get_logger().info(
            f"safety monitor: '{self.p['input_topic']}' -> '{self.p['status_topic']}' at "
            f"{self.p['rate_hz']:g} Hz, distances in "
            + (f"'{self.robot_frame}'" if self.robot_frame else "the skeletons' frame (3D)")
            + f", warning {self.config.warning_distance_m} m, protective "
            f"{self.config.protective_distance_m} m, {len(self.config.zones)} zone(s). "
            "Monitoring aid only, not a certified safety function.")

    # ------------------------------------------------------------------ parameters
    def _read_parameters(self):
        specs = safety_node_specs()
        cfg_specs = safety_config_specs()
        values, errors = declare(self, specs + cfg_specs)
        zone_specs: List[ParamSpec] = []
        for name in values.get("zones", []) or []:
            zone_specs += [
                S(f"zones.{name}.kind", "", "str", "protective | warning | ignore",
                  choices=("protective", "warning", "ignore")),
                S(f"zones.{name}.polygon", [0.0], "float_list",
                  "flat x0, y0, x1, y1, ... [m] in robot_frame (>= 3 vertices)"),
                S(f"zones.{name}.z_min", -math.inf, "float", "lower bound [m]"),
                S(f"zones.{name}.z_max", math.inf, "float", "upper bound [m]"),
            ]
        zvalues, zerrors = declare(self, zone_specs)
        values.update(zvalues)
        errors += zerrors
        errors += unknown_errors(self, specs + cfg_specs + zone_specs)
        config = None
        if not errors:
            try:
                for s in values["static_transforms"]:
                    compat.parse_static_transform(s)
                zones = [Zone.from_flat(n, values[f"zones.{n}.kind"],
                                        values[f"zones.{n}.polygon"],
                                        values[f"zones.{n}.z_min"], values[f"zones.{n}.z_max"])
                         for n in values["zones"]]
                kwargs = {s.name: values[s.name] for s in cfg_specs}
                if values["faces_topic"] and values["face_wait_s"] >= kwargs["stale_timeout_s"]:
                    raise ValueError("'face_wait_s' must be shorter than 'stale_timeout_s' (data "
                                     "that waited that long for its faces would be stale)")
                if values["coverage_cameras"] and not values["robot_frame"]:
                    raise ValueError("'coverage_cameras' needs a 'robot_frame'")
                if not values["robot_frame"] and kwargs["distance_mode"] == "xy":
                    kwargs["distance_mode"] = "xyz"   # an optical frame's 'up' is not z
                config = SafetyConfig(**kwargs, zones=zones)
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ParameterError(f"invalid parameters of {self.get_name()}:\n  - "
                                 + "\n  - ".join(errors))
        return values, config

    # ------------------------------------------------------------------ input
    def _wall(self) -> float:
        return time.monotonic()

    def on_skeletons(self, msg: SkeletonArray) -> None:
        if self._pending is not None:          # its faces never came
            self._process(self._pending[0], None)
            self._pending = None
        if not self._faces_expected():
            self._process(msg, None)
            return
        faces = self._early_faces.pop(_key(msg.header.stamp), None)
        if faces is not None:
            self._process(msg, faces)
        else:
            self._pending = (msg, self._wall())

    def _faces_expected(self) -> bool:
        """Faces come with the skeletons: the topic has a publisher (pose_node publishes a
        FaceLandmarksArray for every frame) or a message came recently."""
        topic = self.p["faces_topic"]
        if not topic:
            return False
        if self._wall() - self._faces_rx_s < FACES_LIVE_S:
            return True
        return self.count_publishers(self.resolve_topic_name(topic)) > 0

    def on_faces(self, msg: FaceLandmarksArray) -> None:
        self._faces_rx_s = self._wall()
        key = _key(msg.header.stamp)
        if self._pending is not None and _key(self._pending[0].header.stamp) == key:
            self._process(self._pending[0], msg)
            self._pending = None
            return
        self._early_faces[key] = msg
        while len(self._early_faces) > MAX_EARLY_FACES:
            self._early_faces.pop(next(iter(self._early_faces)))

    def _flush_pending(self) -> None:
        """Skeletons that waited ``face_wait_s`` for their faces in vain go alone."""
        if self._pending is not None and \
                self._wall() - self._pending[1] >= self.p["face_wait_s"]:
            msg, self._pending = self._pending[0], None
            self._process(msg, None)

    def _process(self, msg: SkeletonArray, faces: Optional[FaceLandmarksArray]) -> None:
        stamp = stamp_to_sec(msg.header.stamp)
        src = msg.header.frame_id
        self._last_msg = msg
        target = self.robot_frame or src
        self._frame = target
        now = self.get_clock().now().nanoseconds * 1e-9
        if self.p["require_depth"] and not msg.depth_used:
            # also when nobody was seen: a frame without usable depth (no CameraInfo, depth
            # invalid everywhere, e.g. something right in front of the camera) cannot say
            # that nobody is near
            self.monitor.update([], stamp, trusted=False,
                                reason="perception ran without depth (RGB-only mode, no "
                                       "CameraInfo, or no usable depth image): distances "
                                       "unknown")
            self.diag.report("input", WARN, "skeletons without depth", now)
            return
        T = None
        if target != src:
            try:
                T = compat.lookup_matrix(self.tf_buffer, target, src, msg.header.stamp,
                                         self.p["tf_timeout_s"])
            except compat.TF_EXCEPTIONS as exc:
                reason = f"no transform '{src}' -> robot_frame '{target}' at the data stamp: {exc}"
                self.monitor.update([], stamp, trusted=False, reason=reason)
                self.diag.report("tf", ERROR, reason, now)
                self.get_logger().warning(reason, throttle_duration_sec=5.0)
                return
        try:
            people = skeletons_to_observations(msg, T)
        except ValueError as exc:        # e.g. a hand of 5 points: its radii are unknown
            reason = f"malformed SkeletonArray: {exc}"
            self.monitor.update([], stamp, trusted=False, reason=reason)
            self.diag.report("input", WARN, reason, now)
            self.get_logger().warning(reason, throttle_duration_sec=5.0)
            return
        if self.coverage is not None:
            self._update_coverage(msg, now)
        if faces is not None and faces.header.frame_id == src:
            people += faces_to_observations(faces, T)
        elif faces is not None:
            reason = (f"faces in frame '{faces.header.frame_id}' but skeletons in '{src}': "
                      "faces ignored (both should come from one pose_node)")
            self.diag.report("faces", WARN, reason, now)
            self.get_logger().warning(reason, throttle_duration_sec=5.0)
        self.monitor.update(people, stamp)
        self.diag.count("skeleton arrays", now)

    def _update_coverage(self, msg: SkeletonArray, now: float) -> None:
        unobserved = self.coverage.unobserved(list(msg.cameras))
        self.monitor.set_coverage(unobserved)
        self.diag.fact("observing cameras", ", ".join(sorted(msg.cameras)) or "none")
        self.diag.fact("unobserved areas", ", ".join(unobserved) or "none")
        for ns, err in self.coverage.errors.items():
            self.diag.report(f"coverage {ns}", WARN, f"camera {ns}: no view ({err})", now)

    # ------------------------------------------------------------------ output
    def on_timer(self) -> None:
        self._flush_pending()
        now_t = self.get_clock().now()
        now = now_t.nanoseconds * 1e-9
        st = self.monitor.evaluate(now)
        self.pub_status.publish(self.status_msg(st, now_t))
        if self.pub_markers is not None and self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(self.markers(st, now_t))
        self.diag.fact("state", st.state_name)
        self.diag.fact("reason", st.reason)
        if st.state == SafetyState.UNKNOWN:
            self.diag.report("state", WARN, f"UNKNOWN: {st.reason}", now)
        else:
            self.diag.clear("state")
        if self.diag.due(now):
            self.pub_diag.publish(self.diag.build(now, now_t.to_msg(),
                                                  input_key="skeleton arrays",
                                                  output_key="skeleton arrays"))

    def status_msg(self, st, now_t) -> SafetyStatus:
        m = SafetyStatus()
        has_data = math.isfinite(st.stamp_s)
        m.header = Header(stamp=sec_to_stamp(st.stamp_s) if has_data else now_t.to_msg(),
                          frame_id=self._frame)
        m.state = int(st.state)
        m.state_name = st.state_name
        m.speed_scale = float(st.speed_scale)
        m.closest_person_id = max(0, int(st.closest_track_id))
        m.closest_keypoint_index = int(st.closest_keypoint_index)
        name = st.closest_keypoint_name
        if not name and st.closest_keypoint_index >= 0 and self._last_msg is not None:
            for s in self._last_msg.skeletons:
                if s.track_id == st.closest_track_id:
                    name = observation_point_name(s, st.closest_keypoint_index)
                    break
        m.closest_keypoint_name = name
        p = np.asarray(st.closest_point, np.float64)
        m.closest_point = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
        m.closest_distance = float(st.closest_distance_m)
        m.closest_point_inferred = bool(st.closest_point_inferred)
        m.closest_point_sigma = float(st.closest_point_sigma_m)
        m.closest_point_radius = float(st.closest_point_radius_m)
        m.people_count = int(st.people_count)
        m.data_age = float(st.age_s)
        m.reason = st.reason
        return m

    def markers(self, st, now_t) -> MarkerArray:
        header = Header(stamp=now_t.to_msg(), frame_id=self._frame)
        out = MarkerArray()
        areas = list(self.config.zones)
        unobserved = set()
        if self.coverage is not None:          # the warning disk too; unobserved areas in purple
            areas = self.coverage.areas
            unobserved = set(self.monitor.unobserved or ())
        for i, z in enumerate(areas):
            m = Marker(ns="safety_zones", id=i, type=Marker.LINE_STRIP, action=Marker.ADD)
            m.header = header
            m.pose.orientation.w = 1.0
            m.scale.x = 0.02
            r, g, b = STATE_COLOURS[SafetyState.UNKNOWN] if z.name in unobserved else \
                ZONE_COLOURS[z.kind]
            m.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
            zz = z.z_min if math.isfinite(z.z_min) else 0.0
            pts = [Point(x=float(x), y=float(y), z=float(zz)) for x, y in z.polygon]
            m.points = pts + pts[:1]
            out.markers.append(m)
        r, g, b = STATE_COLOURS[st.state]
        t = Marker(ns="safety_state", id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        t.header = header
        t.pose.orientation.w = 1.0
        t.pose.position.z = 2.0 if self.robot_frame else 0.0
        t.scale.z = 0.15
        t.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        t.text = f"{st.state_name}  speed x{st.speed_scale:.2f}"
        out.markers.append(t)
        c = Marker(ns="safety_closest", id=0, type=Marker.SPHERE)
        c.header = header
        c.pose.orientation.w = 1.0
        p = np.asarray(st.closest_point, np.float64)
        if np.all(np.isfinite(p)):
            c.action = Marker.ADD
            c.pose.position = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
            c.scale.x = c.scale.y = c.scale.z = 0.12
            c.color = ColorRGBA(r=r, g=g, b=b, a=0.9)
        else:
            c.action = Marker.DELETE
        out.markers.append(c)
        return out


def main(argv: Optional[List[str]] = None) -> int:
    """``pose-perception safety [--ros-args ...]`` / ``ros2 run pose_perception
    safety_monitor_node``."""
    return run_node("safety_monitor",
                    "usage: pose-perception safety [--ros-args -p name:=value --params-file FILE]\n"
                    "Parameters: README.md (Safety monitor)",
                    SafetyMonitorNode, argv)


if __name__ == "__main__":
    sys.exit(main())
