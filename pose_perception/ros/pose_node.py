"""``pose_node``: colour (+ depth) images in; people's skeletons, faces, RViz markers, a debug image
and diagnostics out. A thin layer over :class:`pose_perception.core.perception.Perception`.

Design (one process, bounded latency):

- Subscriptions only *store*: colour and depth images are paired by an approximate-time
  synchroniser (``sync_slop_s``, ``sync_queue_size``); the newest complete pair replaces any pair
  still waiting (the replaced one is counted as dropped). CameraInfo topics are plain
  subscriptions whose latest message is kept (they are not synchronised, so a missing CameraInfo
  never blocks images: the node then publishes 2D only, with a warning).
- One worker thread processes the newest pair: decode -> depth to metres (and reprojection of
  unregistered depth with the depth->colour extrinsics from TF) -> ``Perception.process`` ->
  transform to ``target_frame`` (TF at the image stamp) -> publish. There is never a backlog:
  while a frame is processed, at most one newer pair waits. With ``frame_overlap`` (``auto``:
  when the models run on a GPU; ``always``; ``never``) the second half of a frame
  (``Perception.finish``: lifting, tracking, body language; then the transform and publishing)
  runs on a second thread while the worker decodes the next pair and
  runs the models on it (:class:`pose_perception.core.overlap.OverlappedPerception`); frames are
  still published one at a time, in order.
- Without synchronised depth for ``depth_wait_s`` (depth topic silent, or stamps further apart
  than the slop), colour images are processed alone (2D only) and the diagnostics say why.
- A bad frame (undecodable image, exception in the pipeline) is logged (rate-limited), counted in
  the diagnostics and skipped; the node keeps running.

The class is composition friendly: ``PoseNode(perception_factory=..., **node_kwargs)`` can be
added to any executor beside other nodes of the same process. README.md ("ROS 2 interface")
documents every topic and parameter.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..core.frame_order import DepthWait, StampOrder
from ..core.image_codec import ImageDecodeError, to_rgb
from ..core.inference import run_providers
from ..core.overlap import OverlappedPerception, overlap_wanted
from ..core.types import FrameResult
from ..msg import FaceLandmarksArray, PersonEvent, PersonInteractionArray, SkeletonArray
from . import compat
from .body_language_conversions import events_to_msgs
from .conversions import (CameraModelCache, array_to_image_msg, frame_result_to_msgs,
                          image_msg_to_array, interactions_to_msg, stamp_to_sec)
from .depth_input import DepthInput, check_depth_parameters
from .diagnostics import ERROR, OK, WARN, NodeDiagnostics
from .markers import MarkerBuilder
from .node_support import output_qos, problem_key, rate_limited_log
from .params import ParameterError, changed_from_defaults, declare_checked, nest
from .pose_node_frames import FrameLookups
from .pose_node_intake import ImageIntake
from .pose_node_params import (default_perception_factory, node_param_specs,
                               perception_param_specs)
from .run import run_node
from .startup import CLOCK

NODE_NAME = "pose_node"
OUTPUT_TOPICS = {"skeletons": "people/skeletons", "faces": "people/faces",
                 "interaction": "people/interaction", "events": "people/events",
                 "falls": "people/falls",
                 "markers": "people/markers",
                 "debug_image": "people/debug_image"}


class PoseNode(ImageIntake, FrameLookups, Node):
    """The pose perception node (see the module docstring); its subscriptions and their callbacks
    are :class:`pose_perception.ros.pose_node_intake.ImageIntake`."""

    def __init__(self, perception_factory: Optional[Callable[[Dict[str, Any]], Any]] = None,
                 node_name: str = NODE_NAME, **node_kwargs) -> None:
        self._startup = CLOCK.begin()
        super().__init__(node_name, **node_kwargs)
        self.p = self._read_parameters()
        self.perception_config = self._perception_config()
        CLOCK.mark("node, parameters, pipeline imports")
        self.diag = NodeDiagnostics(f"pose_perception: {self.get_name()}",
                                    hardware_id=self.get_fully_qualified_name(),
                                    period_s=self.p["diagnostics_period_s"])
        self._log = rate_limited_log(self.get_logger(), self.p["log_period_s"])
        factory = perception_factory or default_perception_factory
        self.perception = factory(self.perception_config)
        CLOCK.mark("models (load + warm-up)")
        provider = str(getattr(self.perception, "provider", "unknown"))
        self.diag.fact("execution provider", provider)
        self.diag.fact("precision", str(getattr(self.perception, "precision", "unknown")))
        self._warn_if_gpu_missing(provider)
        mf = "real" if compat.HAVE_MESSAGE_FILTERS else "fallback"
        tf = "real" if compat.HAVE_TF2 else "fallback (static transforms only)"
        self.diag.fact("compat", f"message_filters={mf}, tf2_ros={tf}")
        gestures_off = getattr(getattr(self.perception, "keypoints", None), "gesture_note", "")
        if gestures_off:       # hands run, their gesture models do not: say so, go on
            self.diag.report("hand gestures", WARN, gestures_off, self._now())
            self.get_logger().warn(f"hand gestures off: {gestures_off}")

        self._lock = threading.Condition()
        self._diag_lock = threading.Lock()
        self._slot: Optional[Tuple[Image, Optional[Image]]] = None
        self._order = StampOrder.for_tracking(self.p.get("perception.tracking.max_age_s"))
        self._depth_wait = DepthWait(self.p["depth_wait_s"])
        self._arrivals: Dict[Tuple[str, int], float] = {}   # (input, stamp ns) -> wall time
        self._last_paired_colour: Optional[int] = None
        self._last_depth_stamp: Optional[float] = None
        self._color_info: Optional[CameraInfo] = None
        self._depth_info: Optional[CameraInfo] = None
        self._color_models = CameraModelCache()
        self._start_wall = time.monotonic()
        self._markers = MarkerBuilder(lifetime_s=self.p["marker_lifetime_s"])

        self.tf_buffer, self._tf_listener = compat.create_tf_buffer(
            self, self.p["static_transforms"])
        self._make_publishers()
        self._make_subscriptions()
        self._depth_in = DepthInput(
            self.p, self.topics, self.tf_buffer, bad_input=self._bad_input,
            issue=lambda key, text: self._issue(key, WARN, text),
            path=lambda text: self._fact("depth path", text))
        self._diag_timer = self.create_timer(self.p["diagnostics_period_s"],
                                             self._publish_diagnostics)
        self._stop = threading.Event()
        # frame N finished (and published) beside the models of frame N+1 where the pipeline
        # has the two halves (a test's stand-in may have process() alone)
        overlap = (overlap_wanted(self.p["frame_overlap"], provider)
                   and hasattr(self.perception, "finish"))
        self._overlap = (OverlappedPerception(self.perception, self._publish_frame,
                                              self._finish_failed) if overlap else None)
        self.diag.fact("frame overlap", f"{self.p['frame_overlap']}: "
                       + ("frame N finished beside the models of frame N+1" if overlap
                          else "one frame at a time"))
        self._worker = threading.Thread(target=self._work, name="pose_node_worker", daemon=True)
        self._worker.start()
        depth = " (RGB only)"
        if self.p["use_depth"]:
            how = ("registered" if self.p["depth_registered"]
                   else "unregistered: reprojected with TF extrinsics")
            depth = f", depth '{self.topics['depth_image']}' ({how})"
        out = (f"'{self.p['target_frame']}'" if self.p["target_frame"]
               else "= colour optical frame")
        CLOCK.mark("topics")
        self._ready_age_s = CLOCK.age_s()
        self._first_frame_done = False
        startup = CLOCK.summary(self._startup)
        self.diag.fact("start-up", startup)
        self.get_logger().info(f"pose_node ready: colour '{self.topics['color_image']}'{depth}; "
                               f"provider {provider} "
                               f"({getattr(self.perception, 'precision', 'fp32')}); "
                               f"output frame {out}; start-up {startup}")

    # ------------------------------------------------------------------ configuration
    def _warn_if_gpu_missing(self, provider: str) -> None:
        """use_gpu asked for a GPU provider but the pipeline runs on CPU: a warning when a GPU
        build of onnxruntime failed to start it, one info line for a CPU-only build
        (core.inference.gpu_fallback_note; require_gpu makes the pipeline fail instead)."""
        from ..core.inference import gpu_fallback_note
        if not self.p["use_gpu"] or provider == "unknown":
            return
        try:
            note = gpu_fallback_note(self.p["providers"], provider)
        except (ValueError, ImportError):
            return
        if note is not None and note[0] == "warning":
            self.get_logger().warning(note[1])
        elif note is not None:
            self.get_logger().info(note[1])

    def _read_parameters(self) -> Dict[str, Any]:
        specs = node_param_specs()
        self._perception_specs = perception_param_specs()
        values, errors = declare_checked(self, specs + self._perception_specs)
        errors = errors or check_depth_parameters(values)
        if not errors and values["use_gpu"] and not values["providers"]:
            errors.append("parameter 'providers' is empty: give at least 'cpu'")
        if errors:
            raise ParameterError("invalid parameters of " + self.get_name() + ":\n  - "
                                 + "\n  - ".join(errors))
        return values

    def _perception_config(self) -> Dict[str, Any]:
        """PerceptionConfig.from_dict input: parameters that differ from the core's defaults,
        plus the top-level keypoint switches."""
        p = self.p
        cfg = nest(changed_from_defaults(p, self._perception_specs), "perception.")
        kp = cfg.setdefault("keypoints", {})
        kp["enable_face"], kp["enable_hands"] = p["enable_face"], p["enable_hands"]
        kp["providers"] = run_providers(p["providers"], p["use_gpu"])
        kp["require_gpu"] = p["require_gpu"]
        kp["precision"] = p["precision"]
        # validate here too so that a bad value fails with the parameter's name before models load
        try:
            from ..core.perception import PerceptionConfig
            PerceptionConfig.from_dict(cfg)
        except ImportError:  # pragma: no cover - core always present
            pass
        except ValueError as exc:
            raise ParameterError(f"invalid perception.* parameters of {self.get_name()}: {exc}")
        return cfg

    def _make_publishers(self) -> None:
        out = output_qos()
        self.pub_skeletons = self.create_publisher(SkeletonArray, OUTPUT_TOPICS["skeletons"], out)
        self.pub_faces = self.create_publisher(FaceLandmarksArray, OUTPUT_TOPICS["faces"], out)
        self.pub_interaction = self.create_publisher(PersonInteractionArray,
                                                     OUTPUT_TOPICS["interaction"], out)
        # events are rare and must not be missed: reliable, kept for late joiners' history
        self.pub_events = self.create_publisher(PersonEvent, OUTPUT_TOPICS["events"], 50)
        self.pub_falls = self.create_publisher(PersonEvent, OUTPUT_TOPICS["falls"], 50)
        self.rep155 = self._rep155_publisher()
        self.pub_markers = (self.create_publisher(MarkerArray, OUTPUT_TOPICS["markers"], out)
                            if self.p["publish_markers"] else None)
        latest = output_qos(depth=1)
        self.pub_debug = (self.create_publisher(Image, OUTPUT_TOPICS["debug_image"], latest)
                          if self.p["debug_image"] else None)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._slot is None:
                    self._lock.wait(timeout=0.1)
                item, self._slot = self._slot, None
            if item is None and self.p["use_depth"]:     # a colour image whose depth never came
                held = self._depth_wait.due(self._now())
                if held is not None:
                    self._colour_alone(held)
                continue
            if item is None:
                continue
            try:
                if self._overlap is not None:
                    frame = self._prepare(*item)
                    if frame is not None:
                        self._overlap.submit(frame.rgb, frame.stamp, frame.depth_m, frame.camera,
                                             frame.depth_cam, context=frame,
                                             attention_target=frame.target, up=frame.up)
                else:
                    self.process_pair(*item)
            except Exception as exc:  # one bad frame never kills the node
                if self._stop.is_set() or not self.context.ok():
                    return            # shutting down (Ctrl-C): publishers are already gone
                self._frame_failed(exc)

    def _frame_failed(self, exc: Exception) -> None:
        try:
            with self._diag_lock:
                self.diag.count("frame errors", self._now())
            self._issue("frame", ERROR, f"frame failed: {type(exc).__name__}: {exc}", log=False)
            self._log("frame_exception:" + type(exc).__name__, "error",
                      f"frame skipped after an exception: {type(exc).__name__}: {exc}\n"
                      + "".join(traceback.format_exception(exc)[-4:]))
        except Exception:  # pragma: no cover - reporting must never stop the worker
            pass

    def _finish_failed(self, exc: BaseException, frame: "_Frame") -> None:
        """A frame's second half raised (on the overlap thread): reported like any bad frame."""
        if not self._stop.is_set() and self.context.ok():
            self._frame_failed(exc)

    def _issue(self, key: str, level: int, text: str, log: bool = True) -> None:
        with self._diag_lock:
            self.diag.report(key, level, text, self._now())
        if log:   # rate-limited per kind of message: numbers (stamps, sizes) do not count
            self._log(problem_key(key, text),
                      "error" if level >= ERROR else "warn", text)

    def process_pair(self, color: Image, depth: Optional[Image]) -> Optional[FrameResult]:
        """Process one colour image (+ its depth) at once; publishes and returns the result, or
        None when the frame was skipped. Tests call it directly; the worker thread overlaps
        frames instead (``frame_overlap``)."""
        frame = self._prepare(color, depth)
        if frame is None:
            return None
        result = self.perception.process(frame.rgb, frame.stamp, frame.depth_m, frame.camera,
                                         frame.depth_cam)
        return self._publish_frame(result, frame)

    def _prepare(self, color: Image, depth: Optional[Image]) -> Optional["_Frame"]:
        """Admission, decoding, depth in metres, the frame's robot point and up direction; None
        when the frame is skipped."""
        t0 = time.perf_counter()
        stamp = stamp_to_sec(color.header.stamp)
        if not self._admit(stamp):
            return None
        try:
            rgb = to_rgb(image_msg_to_array(color), color.encoding)
        except ImageDecodeError as exc:
            return self._bad_input(f"colour image on '{self.topics['color_image']}' skipped: "
                                   f"{exc}")
        h, w = rgb.shape[:2]
        cam_frame = color.header.frame_id or (self._color_info.header.frame_id
                                              if self._color_info else "")
        camera = self._colour_camera(w, h)
        depth_m, depth_cam, depth_used = None, None, False
        if depth is not None and camera is not None:
            depth_m, depth_cam = self._depth_for(depth, camera, cam_frame, color.header.stamp)
            depth_used = depth_m is not None
        elif depth is None and self.p["use_depth"]:
            self._fact("depth path", "none (no synchronised depth for this frame)")
        target = self._attention_target(cam_frame, color.header.stamp)
        up = self._up_vector(cam_frame, color.header.stamp)
        # this frame's (an overlapped frame is finished with its own, passed along)
        self.perception.attention_target, self.perception.up = target, up
        return _Frame(color, rgb, stamp, cam_frame, camera, depth_m, depth_cam, depth_used,
                      target, up, t0, time.perf_counter())

    def _publish_frame(self, result: FrameResult, frame: "_Frame") -> Optional[FrameResult]:
        """Transform, convert and publish a processed frame (and its diagnostics); returns the
        result, or None while shutting down."""
        color, rgb, stamp, cam_frame = frame.color, frame.rgb, frame.stamp, frame.cam_frame
        depth_used, t0, t_decode = frame.depth_used, frame.t0, frame.t_decode
        h, w = rgb.shape[:2]
        t_pipe = time.perf_counter()
        for text in getattr(result, "warnings", []) or []:
            self._issue("pipeline", WARN, text)

        if self._stop.is_set():      # shutting down: publishers may be gone
            return None
        out_frame, T = self._output_transform(cam_frame, color.header.stamp)
        header = Header(stamp=color.header.stamp, frame_id=out_frame)
        # outputs nobody subscribes to are not converted (the face meshes cost the most)
        markers = self.pub_markers is not None and self.pub_markers.get_subscription_count() > 0
        faces = markers or self.pub_faces.get_subscription_count() > 0
        sk, fa = frame_result_to_msgs(result, header, depth_used, T,
                                      hands=self.p["enable_hands"],
                                      face_layout=self.p["face_landmarks_layout"], faces=faces)
        inter = interactions_to_msg(result.interactions, header, T)
        self.pub_skeletons.publish(sk)
        if faces:
            self.pub_faces.publish(fa)
        self.pub_interaction.publish(inter)
        for event in events_to_msgs(getattr(result, "events", []), header, T):
            self.pub_events.publish(event)
            if event.event == PersonEvent.EVENT_FALL:      # care robots: falls on their own
                self.pub_falls.publish(event)
        if self.rep155 is not None:
            self.rep155.publish(result, result.interactions, header, w, h, T)
        if markers:
            self.pub_markers.publish(self._markers.build(sk, fa, inter))
        if self.pub_debug is not None and self.pub_debug.get_subscription_count() > 0:
            from .debug_image import draw_result
            self.pub_debug.publish(array_to_image_msg(draw_result(rgb, result), "rgb8",
                                                      color.header))
        t_end = time.perf_counter()
        e2e_ms = (self.get_clock().now().nanoseconds * 1e-9 - stamp) * 1e3
        with self._diag_lock:
            now = self._now()
            self.diag.count("processed", now)
            self.diag.latency_ms("decode+depth", (t_decode - t0) * 1e3)
            self.diag.latency_ms("pipeline", (t_pipe - t_decode) * 1e3)
            self.diag.latency_ms("convert+publish", (t_end - t_pipe) * 1e3)
            for stage, ms in (getattr(result, "timings_ms", {}) or {}).items():
                self.diag.latency_ms(f"stage {stage}", ms)
            self.diag.latency_ms("end-to-end (image stamp -> published)", e2e_ms)
            self.diag.fact("people in last frame", len(result.persons))
        if not self._first_frame_done:
            self._first_frame_done = True
            age = CLOCK.age_s()
            self.get_logger().info(
                f"first frame published {age:.1f} s after the process started, "
                f"{age - self._ready_age_s:.1f} s after ready (waiting for the camera and its "
                f"first pair, then this frame: decode + depth {(t_decode - t0) * 1e3:.0f} ms, "
                f"pipeline {(t_pipe - t_decode) * 1e3:.0f} ms)")
        return result

    @property
    def _last_processed_stamp(self) -> Optional[float]:
        return self._order.last_processed

    def _admit(self, stamp: float) -> bool:
        """Count and report core.frame_order.StampOrder.judge's verdict on a frame about to be
        processed; False: drop it."""
        admission = self._order.judge(stamp)
        if admission.counter:
            with self._diag_lock:
                self.diag.count(admission.counter, self._now())
        if admission.issue:
            self._issue(admission.issue, WARN if admission.warn else OK, admission.text)
        return admission.process

    def _bad_input(self, text: str) -> None:
        with self._diag_lock:
            self.diag.count("decode errors", self._now())
        self._issue("input", WARN, text)
        return None

    def _fact(self, key: str, value: str) -> None:
        with self._diag_lock:
            self.diag.fact(key, value)

    # ------------------------------------------------------------------ camera models
    def _colour_camera(self, w: int, h: int):
        info = self._color_info
        if info is None:
            self._issue("camera_info", WARN,
                        f"no CameraInfo received on '{self.topics['color_info']}': publishing 2D "
                        "only")
            return None
        model, problem = self._color_models.for_image(info, w, h)
        if problem:   # the reason stays in the diagnostics; the log is rate-limited
            self._issue("camera_info", WARN, problem)
        return model

    def _depth_for(self, msg: Image, camera, cam_frame: str, stamp):
        """(depth in metres on a grid the lifter understands, its camera model or None); see
        :class:`pose_perception.ros.depth_input.DepthInput`."""
        return self._depth_in.prepare(msg, self._depth_info, camera, cam_frame, stamp)

    def _rep155_publisher(self):
        """The REP-155 (ROS4HRI) output where asked for and hri_msgs is installed."""
        if not self.p["publish_rep155"]:
            return None
        from . import rep155
        ok, why = rep155.available()
        if not ok:
            self.get_logger().info(f"REP-155 (ROS4HRI) output off: hri_msgs not installed "
                                   f"({why})")
            return None
        pub = rep155.Rep155Publisher(self)
        if not pub.broadcasts_tf:
            self.get_logger().info("REP-155 output on; its TF frames body_/face_/gaze_<id> are "
                                   "not broadcast: tf2_ros is not installed")
        return pub

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now = self._now()
        with self._diag_lock:
            if self._color_info is None and self.diag.last_event("input") is not None:
                self.diag.report("camera_info", WARN,
                                 f"no CameraInfo received on '{self.topics['color_info']}': "
                                 "publishing 2D only", now)
            if self.diag.last_event("input") is None and now - self._start_wall > 5.0:
                self.diag.report("input", WARN, f"no image received on "
                                 f"'{self.topics['color_image']}' yet", now)
            msg = self.diag.build(now, self.get_clock().now().to_msg())
        self.pub_diag.publish(msg)

    def destroy_node(self) -> None:
        worker = getattr(self, "_worker", None)   # None when __init__ failed (e.g. no models)
        if worker is None:
            return super().destroy_node()
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if worker.is_alive() and threading.current_thread() is not worker:
            try:   # let a frame in progress finish (it publishes on this node's publishers)
                worker.join(timeout=3.0)
            except KeyboardInterrupt:  # a second Ctrl-C: do not wait
                pass
        if self._overlap is not None:      # the frame being finished, then its thread
            try:
                self._overlap.close()
            except Exception:   # its error was reported; stopping goes on
                pass
        close = getattr(self.perception, "close", None)   # the keypoint stage's worker thread
        if close is not None:
            close()
        super().destroy_node()


@dataclass
class _Frame:
    """A frame between its first half (decoding, the models) and its second (publishing)."""

    color: Image
    rgb: Any
    stamp: float
    cam_frame: str
    camera: Any
    depth_m: Any
    depth_cam: Any
    depth_used: bool
    target: Any                  # the robot's point for attention (colour optical frame)
    up: Any                      # up in the colour optical frame
    t0: float                    # perf_counter at the start of decoding
    t_decode: float              # ... after decoding and depth


def main(argv: Optional[List[str]] = None) -> int:
    """``pose-perception node [--ros-args ...]`` / ``ros2 run pose_perception pose_node``."""
    return run_node("pose_node",
                    "usage: pose-perception node [--ros-args -p name:=value --params-file FILE]\n"
                    "Parameters and topics: README.md (ROS interface)",
                    PoseNode, argv)


if __name__ == "__main__":
    sys.exit(main())
