"""``people_fusion`` node: the ``SkeletonArray`` of N cameras (each pose node in its own
namespace) in, one fused ``SkeletonArray`` with global track ids out. A thin layer over
:class:`pose_perception.core.people_fusion.PeopleFusion` (association, time alignment, fusion
and tracking are documented there).

- Each camera's skeletons (``<namespace>/<skeletons_topic>``) are transformed into
  ``fusion_frame`` with TF at the message's stamp (the ``static_transforms`` parameter fills in
  where no TF is published or tf2_ros is missing) and kept as that camera's latest frame. A
  camera whose transform is missing loses its frame (it is not fused) and reports a TF error.
- A fusion runs when a camera's frame arrives, at most ``rate_hz`` times a second (a frame
  arriving sooner is fused by the next timer tick, at ``rate_hz``): it fuses the latest frame of
  every camera that is fresh (``max_age_s`` against the node's clock; stamps too far in the
  future, i.e. clock offsets between machines, are left out too) and publishes the fused
  ``SkeletonArray`` (``Skeleton.cameras``: who saw each person; ``SkeletonArray.cameras``: the
  fresh cameras fused, for the safety monitor's coverage; stamp: the newest fused frame) and
  markers; a fused skeleton's ``has_face`` is true when any camera that saw the person found
  its face. Faces and interactions are not fused: they stay on each camera's ``people/faces``
  and ``people/interaction`` (see README, Multi-camera fusion). With no fresh camera nothing
  is published, so a safety monitor downstream goes stale (UNKNOWN) as for one dead camera.
- ``/diagnostics``: one status for the node (fusion latency, people) and one per camera (rate,
  age of its last frame, received, dropped = frames replaced before they were fused, TF status,
  why it was left out of the last fusion, its people without 3D (left out), and its residual:
  how far its people sit from the fused people it shares with other cameras; above
  ``residual_warn_m`` it warns of a wrong transform or calibration).
"""
from __future__ import annotations

import math
import sys
import time
from collections import deque
from typing import Deque, Dict, List, Optional

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..core.frames import transform_frame
from ..core.people_fusion import CameraPeople, FusionConfig, PeopleFusion
from ..core.types import FrameResult
from ..msg import SkeletonArray
from . import compat
from .conversions import person_to_skeleton, sec_to_stamp, skeleton_msg_to_person, stamp_to_sec
from .diagnostics import ERROR, WARN, NodeDiagnostics
from .markers import MarkerBuilder
from .node_support import tf_and_node_diagnostics
from .params import (ParameterError, ParamSpec, dataclass_specs, declare, non_negative,
                     positive, resolve_topic, unknown_errors)
from .run import run_node

S = ParamSpec
NODE_NAME = "people_fusion"
RESIDUAL_FRAMES = 30      # fused frames over which a camera's residual is judged


def fusion_node_specs() -> List[ParamSpec]:
    return [
        S("cameras", [], "str_list", "camera namespaces, one pose node each (e.g. ['/cam_front', "
          "'/cam_back'])"),
        S("skeletons_topic", "people/skeletons", "str", "SkeletonArray topic under each camera "
          "namespace"),
        S("output_topic", "fused/skeletons", "str", "fused SkeletonArray output"),
        S("markers_topic", "fused/markers", "str", "fused people's markers (empty: none)"),
        S("fusion_frame", "base_link", "str", "frame the people are fused and published in"),
        S("rate_hz", 60.0, "float", "most fusions per second: a frame is fused on arrival unless "
          "the last fusion was less than 1/rate_hz ago, then at the next tick [Hz]",
          check=positive),
        S("tf_timeout_s", 0.02, "float", "how long to wait for a camera's transform [s]",
          check=non_negative),
        S("residual_warn_m", 0.12, "float", "a camera whose people sit this far (median over "
          "the last frames) from the fused people it shares is reported: wrong transform or "
          "calibration [m]", check=positive),
        S("static_transforms", [], "str_list", "extra static transforms 'parent child x y z qx "
          "qy qz qw' (e.g. fusion_frame -> each camera's optical frame when no TF publishes it)"),
    ]


def fusion_config_specs() -> List[ParamSpec]:
    return dataclass_specs(FusionConfig, "")


class _Camera:
    """What the node knows of one camera."""

    def __init__(self, namespace: str, period_s: float) -> None:
        self.namespace = namespace
        self.frame: Optional[CameraPeople] = None      # latest, in fusion_frame
        self.depth_used = False
        self.faces: set = set()                        # id() of frame's people with has_face
        self.new = False                               # not fused yet
        self.residuals: Deque[float] = deque(maxlen=RESIDUAL_FRAMES)
        self.diag = NodeDiagnostics(f"pose_perception: people_fusion: camera {namespace}",
                                    hardware_id=namespace, period_s=period_s, stall_s=math.inf)
        self.diag.fact("tf", "no message yet")


class PeopleFusionNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = NODE_NAME, **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.p, self.config = self._read_parameters()
        self.fusion = PeopleFusion(self.config)
        self.frame = self.p["fusion_frame"]
        self.tf_buffer, self._tf_listener, self.diag = tf_and_node_diagnostics(
            self, self.p["static_transforms"])
        self.cams: Dict[str, _Camera] = {}
        self._last_fusion = -math.inf                  # monotonic time of the last fusion
        qos = QoSProfile(depth=5, reliability=QoSReliabilityPolicy.RELIABLE)
        for ns in self.p["cameras"]:
            cam = self.cams[ns] = _Camera(ns, 1.0)
            topic = resolve_topic(ns, self.p["skeletons_topic"])
            self.create_subscription(SkeletonArray, topic,
                                     lambda msg, cam=cam: self.on_skeletons(cam, msg), qos)
        self.pub = self.create_publisher(SkeletonArray, self.p["output_topic"], qos)
        self.pub_markers = (self.create_publisher(MarkerArray, self.p["markers_topic"], qos)
                            if self.p["markers_topic"] else None)
        self.markers = MarkerBuilder(lifetime_s=max(0.2, self.config.max_age_s))
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.timer = self.create_timer(1.0 / self.p["rate_hz"], self.on_timer)
        self.get_logger().info(
            f"people fusion: {len(self.cams)} camera(s) {list(self.cams)} -> "
            f"'{self.p['output_topic']}' in '{self.frame}' at up to {self.p['rate_hz']:g} Hz")

    def _read_parameters(self):
        specs, cfg_specs = fusion_node_specs(), fusion_config_specs()
        values, errors = declare(self, specs + cfg_specs)
        errors += unknown_errors(self, specs + cfg_specs)
        config = None
        if not errors:
            try:
                if not values["cameras"]:
                    raise ValueError("'cameras' is empty: give the camera namespaces")
                if len(set(values["cameras"])) != len(values["cameras"]):
                    raise ValueError(f"'cameras' lists a namespace twice: {values['cameras']}")
                if not values["fusion_frame"]:
                    raise ValueError("'fusion_frame' is empty")
                for s in values["static_transforms"]:
                    compat.parse_static_transform(s)
                config = FusionConfig(**{s.name: values[s.name] for s in cfg_specs})
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ParameterError(f"invalid parameters of {self.get_name()}:\n  - "
                                 + "\n  - ".join(errors))
        return values, config

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ input
    def on_skeletons(self, cam: _Camera, msg: SkeletonArray) -> None:
        now = self._now()
        cam.diag.count("received", now)
        if cam.new:
            cam.diag.count("dropped", now)      # the previous frame was never fused
        src = msg.header.frame_id
        try:
            T = compat.lookup_matrix(self.tf_buffer, self.frame, src, msg.header.stamp,
                                     self.p["tf_timeout_s"])
        except compat.TF_EXCEPTIONS as exc:
            cam.frame, cam.new = None, False
            text = f"no transform '{src}' -> '{self.frame}' at the data stamp: {exc}"
            cam.diag.fact("tf", "missing")
            cam.diag.report("tf", ERROR, text, now)
            self.get_logger().warning(f"camera {cam.namespace}: {text}",
                                      throttle_duration_sec=5.0)
            return
        try:
            people = [skeleton_msg_to_person(s) for s in msg.skeletons]
            result = transform_frame(FrameResult(persons=people), matrix=T, inplace=True)
        except ValueError as exc:
            cam.frame, cam.new = None, False
            cam.diag.report("input", WARN, f"malformed SkeletonArray: {exc}", now)
            return
        cam.diag.fact("tf", f"ok ('{src}' -> '{self.frame}')")
        cam.diag.clear("tf")
        cam.frame = CameraPeople(cam.namespace, stamp_to_sec(msg.header.stamp), result.persons)
        cam.faces = {id(p) for s, p in zip(msg.skeletons, result.persons) if s.has_face}
        cam.depth_used = bool(msg.depth_used)
        cam.new = True
        if time.monotonic() - self._last_fusion >= 1.0 / self.p["rate_hz"]:
            self._fuse(self.get_clock().now())      # at once, at most rate_hz times a second

    # ------------------------------------------------------------------ fusion + output
    def on_timer(self) -> None:
        now_t = self.get_clock().now()
        now = now_t.nanoseconds * 1e-9
        if any(c.new for c in self.cams.values()):
            self._fuse(now_t)
        for c in self.cams.values():
            if c.frame is not None:
                c.diag.fact("age of last frame [s]", f"{now - c.frame.stamp_s:.3f}")
            if c.diag.last_event("received") is None or now - c.diag.last_event("received") > \
                    self.config.max_age_s:
                c.diag.report("silent", WARN, "no fresh SkeletonArray", now)
            else:
                c.diag.clear("silent")
        if self.diag.due(now):
            arr = self.diag.build(now, now_t.to_msg(), input_key="fused", output_key="fused")
            for c in self.cams.values():
                arr.status += c.diag.build(now, input_key="received",
                                           output_key="received").status
            self.pub_diag.publish(arr)

    def _fuse(self, now_t) -> None:
        """Fuse the latest frame of every camera and publish (see the module docstring)."""
        now = now_t.nanoseconds * 1e-9
        self._last_fusion = time.monotonic()
        frames = [c.frame for c in self.cams.values() if c.frame is not None]
        t0 = time.perf_counter()
        res = self.fusion.update(frames, now)
        self.diag.latency_ms("fusion", (time.perf_counter() - t0) * 1e3)
        for c in self.cams.values():
            c.new = False
            self._check_residual(c, res.camera_residual_m.get(c.namespace), now)
            status = res.camera_status.get(c.namespace, "no frame")
            if status == "used":
                c.diag.fact("people without 3D, left out", res.camera_no_3d.get(c.namespace, 0))
            c.diag.fact("last fusion", status)
            if status not in ("used", "no frame"):
                c.diag.report("fusion", WARN, f"left out of the fusion: {status}", now)
            else:
                c.diag.clear("fusion")
        if res.fresh_cameras:
            self._publish(res, now_t)
            self.diag.count("fused", now)
            self.diag.fact("people", len(res.people))
        else:
            self.diag.report("cameras", ERROR, "no fresh camera: nothing published", now)

    def _check_residual(self, cam: _Camera, residual: Optional[float], now: float) -> None:
        if residual is None:
            return
        cam.residuals.append(residual)
        med = float(np.median(cam.residuals))
        cam.diag.fact("residual to fused people [m]", f"{med:.3f}")
        if len(cam.residuals) >= RESIDUAL_FRAMES // 3 and med > self.p["residual_warn_m"]:
            cam.diag.report("residual", WARN, f"its people sit {med:.2f} m from the fused "
                            "people it shares with other cameras: wrong transform (TF, mount) "
                            "or calibration of this camera or of the others?", now)
        else:
            cam.diag.clear("residual")

    def _publish(self, res, now_t) -> None:
        header = Header(stamp=sec_to_stamp(res.stamp_s), frame_id=self.frame)
        out = SkeletonArray(depth_used=any(c.depth_used for c in self.cams.values()
                                           if c.namespace in res.fresh_cameras))
        out.header = header
        out.cameras = list(res.fresh_cameras)
        for fp in res.people:
            s = person_to_skeleton(fp.person, header)
            s.cameras = list(fp.cameras)
            # a camera found this person's face (the faces themselves stay on each camera's
            # people/faces, in its own frame, with that camera's track ids)
            s.has_face = any(id(p) in self.cams[c].faces for c, p in fp.sources
                             if c in self.cams)
            out.skeletons.append(s)
        self.pub.publish(out)
        if self.pub_markers is not None and self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(self.markers.build(out))


def main(argv: Optional[List[str]] = None) -> int:
    """``pose-perception fusion [--ros-args ...]`` / ``ros2 run pose_perception
    people_fusion_node``."""
    return run_node(NODE_NAME,
                    "usage: pose-perception fusion [--ros-args -p cameras:=\"['/cam1', '/cam2']\" "
                    "-p fusion_frame:=base_link ...]\nParameters: README.md (Multi-camera fusion)",
                    PeopleFusionNode, argv)


if __name__ == "__main__":
    sys.exit(main())
