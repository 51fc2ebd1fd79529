"""``lifting_node``: the 3D-lifting stage on its own. 2D skeletons + depth in, 3D skeletons out.

Use it to run the stages separately: ``pose_node`` with ``use_depth:=false`` (or any other
source of 2D ``SkeletonArray`` messages whose pixels are those of the colour image) publishes
2D skeletons; this node lifts them with the depth image exactly as ``pose_node`` would
(:class:`pose_perception.core.lifting.Lifter`, depth read by
:class:`pose_perception.ros.depth_input.DepthInput`: registered, registered at another
resolution, or unregistered with TF extrinsics) and publishes a 3D ``SkeletonArray``.

- Pairing: every depth image is kept in a short history (``depth_history`` images, not
  decoded). A SkeletonArray is lifted with the depth image of the nearest stamp within
  ``sync_slop_s``; when the newest depth is still older than the skeletons (a nearer one may
  come), it waits up to ``depth_wait_s`` for it. Without depth within the slop, without a usable
  colour CameraInfo, or with an unusable depth image, the skeletons are published with
  ``depth_used`` false and every 3D field invalid (the reason is logged, rate-limited).
- Output: same header stamp as the input, ``header.frame_id`` the colour camera's optical frame
  (colour CameraInfo's frame, else the input's), ``depth_used`` true when lifted. Track ids,
  confidences, boxes, 2D keypoints, hands and ``has_face`` are passed through; body and hand
  points get 3D, the centroid is recomputed. Velocity is not available (``velocity_valid``
  false): the 2D stage has no 3D track history.
- Faces: the FaceLandmarksArray of ``faces_input_topic`` (pose_node's ``people/faces``) is
  paired and lifted the same way (mesh points on the depth, head pose from the 468-point mesh)
  and published on ``faces_output_topic``; ids, association, box and confidence pass through.
- **No model fill in this split mode**: the model's metric 3D (BlazePose world landmarks) does
  not travel in a SkeletonArray, so joints without trustworthy depth stay invalid instead of
  being filled from the model (``SOURCE_MODEL``); occlusion reasoning works without it. For the
  model fill, run ``pose_node`` with depth (one process).
- Bad input (unknown layout, wrong keypoint count, undecodable depth, an exception while
  lifting) is logged (rate-limited) and the frame skipped; the node keeps running. No
  /diagnostics are published by this node.

Callbacks run the whole frame (lifting a few people takes milliseconds); with a single-threaded
executor no locking is needed.
"""
from __future__ import annotations

import sys
import time
import traceback
from collections import deque
from typing import Deque, Dict, List, Optional, Tuple, Union

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ..core.lifting import Lifter, LiftingConfig
from ..core.types import FrameResult, Person
from ..msg import FaceLandmarksArray, SkeletonArray
from . import compat
from .conversions import (CameraModelCache, face_msg_to_face, face_to_msg, person_to_skeleton,
                          skeleton_msg_to_person, stamp_to_sec)
from .depth_input import DepthInput, check_depth_parameters
from .node_support import (camera_info_qos, camera_param_specs, output_qos, problem_key,
                           rate_limited_log, sensor_qos)
from .params import (ParameterError, ParamSpec, at_least, changed_from_defaults, dataclass_specs,
                     declare_checked, nest, non_negative, positive, resolve_topic)
from .run import run_node

NODE_NAME = "lifting_node"
Message = Union[SkeletonArray, FaceLandmarksArray]


def node_param_specs() -> List[ParamSpec]:
    """The node's parameters (``perception.lifting.*`` come from LiftingConfig)."""
    S = ParamSpec
    return list(camera_param_specs().values()) + [
        S("input_topic", "people/skeletons", "str", "2D SkeletonArray input (e.g. pose_node "
          "with use_depth:=false)"),
        S("output_topic", "people/skeletons_3d", "str", "3D SkeletonArray output"),
        S("faces_input_topic", "people/faces", "str", "2D FaceLandmarksArray input (empty: "
          "faces are not lifted)"),
        S("faces_output_topic", "people/faces_3d", "str", "3D FaceLandmarksArray output"),
        S("sync_slop_s", 0.05, "float", "max stamp difference of a skeletons/depth pair [s]",
          check=non_negative),
        S("depth_history", 30, "int", "depth images kept for pairing (the skeletons arrive "
          "after their depth)", check=at_least(1)),
        S("depth_wait_s", 0.2, "float", "how long skeletons newer than every depth image wait "
          "for a nearer one [s]", check=positive),
    ]


def lifting_param_specs() -> List[ParamSpec]:
    return dataclass_specs(LiftingConfig, "perception.lifting.")


class LiftingNode(Node):
    """The 3D-lifting node (see the module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.p, lifting = self._read_parameters()
        self.lifter = Lifter(lifting)
        self._log = rate_limited_log(self.get_logger(), self.p["log_period_s"])
        self.counts: Dict[str, int] = {"input": 0, "lifted": 0, "published 2D": 0,
                                       "skipped": 0}
        self._depths: Deque[Image] = deque(maxlen=self.p["depth_history"])
        # skeletons and faces waiting for their depth image, in arrival order
        self._pending: Deque[Tuple[Message, float]] = deque(maxlen=2 * self.p["qos_depth"])
        self._color_info: Optional[CameraInfo] = None
        self._depth_info: Optional[CameraInfo] = None
        self._color_models = CameraModelCache()
        self.tf_buffer, self._tf_listener = compat.create_tf_buffer(
            self, self.p["static_transforms"])

        p, ns = self.p, self.p["camera_namespace"]
        self.topics = {k: resolve_topic(ns, p[f"{k}_topic"])
                       for k in ("color_info", "depth_image", "depth_info")}
        self.topics.update(input=p["input_topic"], output=p["output_topic"],
                           faces_input=p["faces_input_topic"],
                           faces_output=p["faces_output_topic"])
        self._depth_in = DepthInput(p, self.topics, self.tf_buffer,
                                    bad_input=lambda text: self._warn("input", text),
                                    issue=self._warn, path=lambda text: None)
        cam_qos = sensor_qos(p["qos_reliability"], p["qos_depth"])
        info_qos = camera_info_qos(p["qos_reliability"])
        out = output_qos()
        self.pub = self.create_publisher(SkeletonArray, self.topics["output"], out)
        self.pub_faces = None
        if self.topics["faces_input"]:
            self.pub_faces = self.create_publisher(FaceLandmarksArray,
                                                   self.topics["faces_output"], out)
            self.create_subscription(FaceLandmarksArray, self.topics["faces_input"],
                                     self._on_input, out)
        self.create_subscription(CameraInfo, self.topics["color_info"], self._on_color_info,
                                 info_qos)
        self.create_subscription(CameraInfo, self.topics["depth_info"], self._on_depth_info,
                                 info_qos)
        self.create_subscription(Image, self.topics["depth_image"], self._on_depth, cam_qos)
        self.create_subscription(SkeletonArray, self.topics["input"], self._on_input, out)
        self._timer = self.create_timer(max(0.01, 0.5 * p["depth_wait_s"]), self._drain)
        how = ("registered" if p["depth_registered"]
               else "unregistered: reprojected with TF extrinsics")
        self.get_logger().info(
            f"lifting_node ready: '{self.topics['input']}' + depth '{self.topics['depth_image']}'"
            f" ({how}) -> '{self.topics['output']}'"
            + (f"; faces '{self.topics['faces_input']}' -> '{self.topics['faces_output']}'"
               if self.pub_faces is not None else "") + " (no model fill in split mode)")

    # ------------------------------------------------------------------ configuration
    def _read_parameters(self) -> Tuple[Dict, LiftingConfig]:
        specs, lspecs = node_param_specs(), lifting_param_specs()
        values, errors = declare_checked(self, specs + lspecs)
        errors = errors or check_depth_parameters(values)
        lifting = None
        if not errors:
            from ..core.perception import dataclass_from_dict
            cfg = nest(changed_from_defaults(values, lspecs), "perception.")
            try:
                lifting = dataclass_from_dict(LiftingConfig, cfg.get("lifting"),
                                              "perception.lifting")
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ParameterError("invalid parameters of " + self.get_name() + ":\n  - "
                                 + "\n  - ".join(errors))
        return values, lifting

    # ------------------------------------------------------------------ callbacks
    def _on_color_info(self, msg: CameraInfo) -> None:
        self._color_info = msg

    def _on_depth_info(self, msg: CameraInfo) -> None:
        self._depth_info = msg

    def _on_depth(self, msg: Image) -> None:
        self._depths.append(msg)
        self._drain()

    def _on_input(self, msg: Message) -> None:
        """A SkeletonArray or FaceLandmarksArray: queued until its depth image is there."""
        self.counts["input"] += 1
        if len(self._pending) == self._pending.maxlen:
            oldest = self._pending.popleft()[0]
            self._process(oldest, self._pick(oldest, final=True)[1])
        self._pending.append((msg, time.monotonic()))
        self._drain()

    def _drain(self) -> None:
        """Process the waiting SkeletonArrays, oldest first, that have their depth (or have
        waited ``depth_wait_s``)."""
        now = time.monotonic()
        while self._pending:
            msg, since = self._pending[0]
            final = now - since >= self.p["depth_wait_s"]
            ready, depth = self._pick(msg, final)
            if not ready:
                return
            self._pending.popleft()
            self._process(msg, depth)

    def _pick(self, msg: Message, final: bool) -> Tuple[bool, Optional[Image]]:
        """(ready, the depth image of the nearest stamp within sync_slop_s or None). Not ready
        while every depth image is older than the skeletons (a nearer one may still come),
        unless ``final``."""
        t = stamp_to_sec(msg.header.stamp)
        best, best_dt, newest = None, float("inf"), float("-inf")
        for d in self._depths:
            td = stamp_to_sec(d.header.stamp)
            newest = max(newest, td)
            if abs(td - t) < best_dt:
                best, best_dt = d, abs(td - t)
        if best_dt > self.p["sync_slop_s"]:
            best = None
        ready = final or best_dt == 0.0 or newest >= t
        return ready, best

    # ------------------------------------------------------------------ one frame
    def _process(self, msg: Message, depth: Optional[Image]) -> Optional[Message]:
        try:
            if isinstance(msg, FaceLandmarksArray):
                return self.process_faces(msg, depth)
            return self.process(msg, depth)
        except Exception as exc:  # one bad frame never kills the node
            self.counts["skipped"] += 1
            self._log("frame_exception:" + type(exc).__name__, "error",
                      f"skeletons skipped after an exception: {type(exc).__name__}: {exc}\n"
                      + "".join(traceback.format_exception(exc)[-4:]))
            return None

    def process(self, msg: SkeletonArray, depth: Optional[Image]) -> Optional[SkeletonArray]:
        """Lift one SkeletonArray with its depth image (None: publish it in 2D); publishes and
        returns the output, or None when the message was skipped (bad skeletons)."""
        try:
            persons = [skeleton_msg_to_person(s) for s in msg.skeletons]
        except ValueError as exc:
            self.counts["skipped"] += 1
            self._warn("skeletons", f"SkeletonArray on '{self.topics['input']}' skipped: {exc}")
            return None
        for person in persons:      # only the depth image gives 3D here
            _drop_3d(person)
        header, depth_used = self._lift(msg, depth, FrameResult(persons=persons), "skeletons")
        out = SkeletonArray(depth_used=depth_used)
        out.header = header
        for person, s_in in zip(persons, msg.skeletons):
            s = person_to_skeleton(person, header, None, hands=True)
            s.has_face = s_in.has_face
            out.skeletons.append(s)
        self.pub.publish(out)
        self.counts["lifted" if depth_used else "published 2D"] += 1
        return out

    def process_faces(self, msg: FaceLandmarksArray, depth: Optional[Image]
                      ) -> Optional[FaceLandmarksArray]:
        """Lift one FaceLandmarksArray (None depth: publish it in 2D); publishes and returns the
        output, or None when the message was skipped (bad faces)."""
        try:
            faces = [face_msg_to_face(f) for f in msg.faces]
        except ValueError as exc:
            self.counts["skipped"] += 1
            self._warn("faces", f"FaceLandmarksArray on '{self.topics['faces_input']}' skipped: "
                       f"{exc}")
            return None
        for face in faces:
            _drop_keypoints_3d(face.mesh)
        header, depth_used = self._lift(msg, depth, FrameResult(faces_without_body=faces),
                                        "faces")
        out = FaceLandmarksArray()
        out.header = header
        out.faces = [face_to_msg(f, header, None, f.mesh.layout) for f in faces]
        self.pub_faces.publish(out)
        self.counts["lifted" if depth_used else "published 2D"] += 1
        return out

    def _lift(self, msg: Message, depth: Optional[Image], result: FrameResult, what: str
              ) -> Tuple[Header, bool]:
        """Lift ``result`` in place with ``depth``; (output header, depth used)."""
        info = self._color_info
        cam_frame = (info.header.frame_id if info is not None and info.header.frame_id
                     else msg.header.frame_id)
        camera = self._colour_camera()
        depth_used = False
        if depth is None:
            self._warn("depth", f"no depth image on '{self.topics['depth_image']}' within "
                       f"sync_slop_s = {self.p['sync_slop_s']:g} s of the {what}' stamp: "
                       "published in 2D")
        elif camera is not None:
            depth_m, depth_cam = self._depth_in.prepare(depth, self._depth_info, camera,
                                                        cam_frame, msg.header.stamp)
            if depth_m is not None:
                self.lifter.lift_frame(result, depth_m, camera, depth_cam)
                depth_used = True
        return Header(stamp=msg.header.stamp, frame_id=cam_frame), depth_used

    def _colour_camera(self):
        """The colour CameraInfo's model (cached), or None (warned) without a usable one."""
        info = self._color_info
        if info is None:
            self._warn("camera_info", f"no CameraInfo received on '{self.topics['color_info']}'"
                       ": published in 2D")
            return None
        model = self._color_models.get(info)
        if model is None:
            self._warn("camera_info", f"unusable CameraInfo on '{self.topics['color_info']}' "
                       "(uncalibrated?): published in 2D")
        return model

    # ------------------------------------------------------------------ logging
    def _warn(self, key: str, text: str) -> None:
        self._log(problem_key(key, text), "warn", text)


def _drop_3d(person: Person) -> None:
    """Forget any 3D the input carried (the output's 3D comes from this node's depth only)."""
    person.centroid = person.velocity = None
    for kps in [person.body] + [h.keypoints for h in person.hands]:
        _drop_keypoints_3d(kps)


def _drop_keypoints_3d(kps) -> None:
    kps.xyz = kps.xyz_valid = kps.xyz_sigma = kps.xyz_source = None


def main(argv: Optional[List[str]] = None) -> int:
    """``pose-perception lift [--ros-args ...]`` / ``ros2 run pose_perception lifting_node``."""
    return run_node("lifting_node",
                    "usage: pose-perception lift [--ros-args -p name:=value --params-file FILE]\n"
                    "2D SkeletonArray + depth in, 3D SkeletonArray out. Parameters and topics: "
                    "README.md (Running the stages separately)",
                    LiftingNode, argv)


if __name__ == "__main__":
    sys.exit(main())
