"""The demo's ROS 2 graph in one process: sample camera (unless live) -> pose node -> safety monitor
-> a recorder node that turns the outputs into :class:`DemoLog` records."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from ..core.body_language import gesture_words
from .demo_records import (ENGAGEMENT_ORDER, POSTURE_ORDER, DemoLog, EventRec, FrameRec,
                           InteractionRec, PersonRec, SafetyRec, stamp_ns)


# ------------------------------------------------------------------------------ ROS graph
class _ImageKeeper:
    """Keeps at most ``cap`` images spread over the whole run (drops every other one when full,
    then keeps every 2nd, 4th ... newcomer)."""

    def __init__(self, cap: int = 64) -> None:
        self.cap, self.stride, self.seen = cap, 1, 0
        self.images: Dict[int, np.ndarray] = {}

    def offer(self, key: int, make) -> None:
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        self.images[key] = make()
        if len(self.images) > self.cap:
            for k in sorted(self.images)[1::2]:
                del self.images[k]
            self.stride *= 2


def _make_recorder(context, log: DemoLog, status_topic: str, keeper: _ImageKeeper):
    """A node that turns the graph's outputs into ``log`` records."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from ..msg import (FaceLandmarksArray, PersonEvent, PersonInteractionArray, SafetyStatus,
                       SkeletonArray)
    from ..ros.conversions import image_msg_to_array, keypoint_msgs_to_arrays, stamp_to_sec

    class Recorder(Node):
        def __init__(self) -> None:
            super().__init__("demo_recorder", context=context)
            qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
            self.create_subscription(SkeletonArray, "people/skeletons", self.on_skeletons, qos)
            self.create_subscription(FaceLandmarksArray, "people/faces", self.on_faces, qos)
            self.create_subscription(SafetyStatus, status_topic, self.on_status, qos)
            self.create_subscription(PersonInteractionArray, "people/interaction",
                                     self.on_interaction, qos)
            self.create_subscription(PersonEvent, "people/events", self.on_event, 50)
            self.create_subscription(Image, "people/debug_image", self.on_image,
                                     qos_profile_sensor_data)
            self.faces: Dict[int, int] = {}

        def on_skeletons(self, msg) -> None:
            now = time.time()
            persons = []
            for s in msg.skeletons:
                xy, conf, xyz, _valid = keypoint_msgs_to_arrays(s.keypoints)
                c = (np.array([s.centroid.x, s.centroid.y, s.centroid.z])
                     if s.centroid_valid else np.full(3, np.nan))
                persons.append(PersonRec(int(s.track_id), s.layout, xy, conf, xyz, c,
                                         bool(s.has_face)))
            st = stamp_to_sec(msg.header.stamp)
            key = stamp_ns(st)
            log.frames[key] = FrameRec(st, msg.header.frame_id, persons, bool(msg.depth_used),
                                       now, self.faces.pop(key, 0))

        def on_faces(self, msg) -> None:
            key = stamp_ns(stamp_to_sec(msg.header.stamp))
            if key in log.frames:
                log.frames[key].faces = len(msg.faces)
            else:
                self.faces[key] = len(msg.faces)

        def on_interaction(self, msg) -> None:
            st = stamp_to_sec(msg.header.stamp)
            for p in msg.people:
                target = (np.array([p.pointing_target.x, p.pointing_target.y,
                                    p.pointing_target.z]) if p.pointing_target_valid else None)
                log.interaction.append(InteractionRec(
                    st, int(p.track_id), bool(p.looking_at_robot),
                    math.degrees(p.looking_angle), ENGAGEMENT_ORDER[p.engagement]
                    if p.engagement < len(ENGAGEMENT_ORDER) else "UNKNOWN",
                    float(p.engagement_level),
                    POSTURE_ORDER[p.posture] if p.posture < len(POSTURE_ORDER) else "unknown",
                    tuple(gesture_words(g) for g in p.gestures), target))

        def on_event(self, msg) -> None:
            what = ("fall" if msg.event == msg.EVENT_FALL else gesture_words(msg.gesture)
                    + (" started" if msg.event == msg.EVENT_GESTURE_STARTED else " ended"))
            log.events.append(EventRec(stamp_to_sec(msg.header.stamp), int(msg.track_id), what))

        def on_status(self, msg) -> None:
            log.safety.append(SafetyRec(stamp_to_sec(msg.header.stamp), time.time(),
                                        msg.state_name, float(msg.speed_scale),
                                        float(msg.closest_distance), int(msg.closest_person_id),
                                        msg.closest_keypoint_name, msg.reason))

        def on_image(self, msg) -> None:
            key = stamp_ns(stamp_to_sec(msg.header.stamp))
            keeper.offer(key, lambda: np.array(image_msg_to_array(msg))[..., :3])

    return Recorder()


def _params(values: Dict[str, Any]):
    from rclpy.parameter import Parameter
    return [Parameter(k, value=v) for k, v in values.items()]


@dataclass
class GraphSetup:
    """What to run: frames to publish (None: live topics), and the nodes' parameters."""

    frames: Optional[List[Any]]
    source: str
    synthetic: bool
    rate_hz: float
    pose_params: Dict[str, Any]
    safety_params: Dict[str, Any]
    duration_s: float = 10.0
    truth: Optional[np.ndarray] = None
    camera_height_m: Optional[float] = None
    face: bool = True


def run_graph(setup: GraphSetup, drain_s: float = 8.0, verbose: bool = True) -> DemoLog:
    """Runs camera (unless live) -> pose node -> safety monitor -> recorder; returns the log."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from ..ros.pose_node import PoseNode
    from ..ros.safety_monitor_node import SafetyMonitorNode

    log = DemoLog(setup.source, setup.synthetic, truth=setup.truth,
                  camera_height_m=setup.camera_height_m, face_enabled=setup.face)
    keeper = _ImageKeeper()
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    nodes = []
    executor = SingleThreadedExecutor(context=context)
    t_start = time.monotonic()
    try:
        say = print if verbose else (lambda *a, **k: None)
        say("demo: starting pose_node (loading models) ...", flush=True)
        pose = PoseNode(context=context, parameter_overrides=_params(setup.pose_params))
        log.provider = str(getattr(pose.perception, "provider", ""))
        safety = SafetyMonitorNode(context=context,
                                   parameter_overrides=_params(setup.safety_params))
        log.warning_m = float(safety.config.warning_distance_m)
        log.protective_m = float(safety.config.protective_distance_m)
        recorder = _make_recorder(context, log, safety.p["status_topic"], keeper)
        nodes += [pose, safety, recorder]
        for n in nodes:
            executor.add_node(n)
        camera = None
        if setup.frames is not None:
            from ..ros.sample_camera_node import SampleCameraNode
            camera = SampleCameraNode(frames=setup.frames, context=context,
                                      parameter_overrides=_params(
                                          {"rate_hz": float(setup.rate_hz), "loop": False}))
            camera.timer.cancel()                  # start once the pose node is connected
            nodes.append(camera)
            executor.add_node(camera)
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline and (
                    camera.pub_color.get_subscription_count() < 1
                    or camera.pub_depth.get_subscription_count() < 1):
                executor.spin_once(timeout_sec=0.05)
            for _ in range(10):                       # let discovery settle both ways
                executor.spin_once(timeout_sec=0.02)
            say(f"demo: publishing {len(setup.frames)} frames of {setup.source} at "
                f"{setup.rate_hz:g} Hz", flush=True)
            # prime: the first frame alone (first inferences are slow), then the stream
            camera.publish_next()
            t_prime = time.monotonic()
            while not log.frames and time.monotonic() - t_prime < 20.0:
                executor.spin_once(timeout_sec=0.05)
            camera.timer.reset()
            t_pub = time.monotonic()
            while not camera.done and time.monotonic() - t_pub < len(setup.frames) / \
                    setup.rate_hz * 3 + 30:
                executor.spin_once(timeout_sec=0.05)
            # drain: wait for the last frame's skeletons (the node keeps only the newest frame)
            last = stamp_ns(camera.published[-1][1]) if camera.published else None
            t_done = time.monotonic()
            while time.monotonic() - t_done < drain_s and (last is None or
                                                           last not in log.frames):
                executor.spin_once(timeout_sec=0.05)
            t_end = time.monotonic() + 0.3                   # a few more safety statuses
            while time.monotonic() < t_end:
                executor.spin_once(timeout_sec=0.05)
            log.published = list(camera.published)
        else:
            say(f"demo: listening on {pose.topics['color_image']} for {setup.duration_s:g} s",
                flush=True)
            t_end = time.monotonic() + setup.duration_s
            while time.monotonic() < t_end:
                executor.spin_once(timeout_sec=0.05)
            if not log.frames:
                log.notes.append(f"nothing received on {pose.topics['color_image']} "
                                 f"(+ depth {pose.topics['depth_image']}) in "
                                 f"{setup.duration_s:g} s")
    finally:
        for n in nodes:
            try:
                executor.remove_node(n)
                n.destroy_node()
            except Exception:  # shutting down: report nothing more
                pass
        executor.shutdown()
        if context.ok():
            rclpy.shutdown(context=context)
    log.images = keeper.images
    log.wall_s = time.monotonic() - t_start
    return log
