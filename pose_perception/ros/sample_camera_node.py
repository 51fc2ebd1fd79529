"""``sample_camera_node``: publishes RGB-D frames the way a camera driver does - colour Image +
CameraInfo and depth Image + CameraInfo with the same stamp and frame, at a fixed rate, looping.

Sources (parameter ``source``): empty = the built-in synthetic sample
(:func:`pose_perception.sources.sample.builtin_sample`); a recorded folder (``color/*.png`` +
``depth/*.png`` (uint16 mm) + ``camera_info.yaml``, or ``<frame>/rgb.png`` + ``depth.npy`` +
``camera_info.yaml`` folders, see :mod:`pose_perception.sources.rgbd_folder`). Depth is published as
recorded (16UC1 millimetres or 32FC1 metres) unless ``depth_encoding`` asks for one of them.

The default topics are the ones ``pose_node`` listens to (``/camera/color/image_raw``,
``/camera/color/camera_info``, ``/camera/aligned_depth_to_color/image_raw``,
``/camera/aligned_depth_to_color/camera_info``). Stamps: ``stamp_mode`` 'now' stamps each frame
with the current time (colour and depth identical, as a RealSense aligned stream);
'recorded' keeps the recorded stamps (shifted to the present, increasing across loops) including
the recorded colour/depth offset, as on the real robot the data came from.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ..core.camera import CameraModel
from ..core.depth import depth_to_metres, metres_to_16uc1
from .conversions import array_to_image_msg, camera_model_to_info, sec_to_stamp
from .params import (ParameterError, ParamSpec, declare_checked, non_negative, positive,
                     resolve_topic)
from .run import run_node
from .startup import CLOCK

DEFAULT_FRAME_ID = "camera_color_optical_frame"


def camera_specs() -> List[ParamSpec]:
    S = ParamSpec
    return [
        S("source", "", "str", "folder of recorded RGB-D frames; empty = built-in synthetic "
          "sample"),
        S("rate_hz", 30.0, "float", "publishing rate [Hz]", check=positive),
        S("loop", True, "bool", "start again after the last frame"),
        S("max_frames", 0, "int", "use at most this many frames (0 = all)", check=non_negative),
        S("camera_namespace", "/camera", "str", "prefix of the relative topics below"),
        S("color_image_topic", "color/image_raw", "str", "colour image topic"),
        S("color_info_topic", "color/camera_info", "str", "colour CameraInfo topic"),
        S("depth_image_topic", "aligned_depth_to_color/image_raw", "str", "depth image topic"),
        S("depth_info_topic", "aligned_depth_to_color/camera_info", "str",
          "depth CameraInfo topic"),
        S("publish_depth", True, "bool", "publish the depth image and its CameraInfo"),
        S("color_encoding", "rgb8", "str", "encoding of the colour image",
          choices=("rgb8", "bgr8")),
        S("depth_encoding", "auto", "str", "'auto' = as recorded",
          choices=("auto", "16UC1", "32FC1")),
        S("frame_id", "", "str", "header frame; empty = from the recording (else "
          f"'{DEFAULT_FRAME_ID}')"),
        S("stamp_mode", "now", "str", "'now' or 'recorded' (see module docstring)",
          choices=("now", "recorded")),
        S("reliable", True, "bool", "reliable QoS (also reaches best-effort subscribers)"),
    ]


# loops of up to this many frames keep their messages (a loop then takes less CPU from the nodes
# it feeds: no image conversion per publication); about 1.5 MB per VGA RGB-D frame
MAX_CACHED_FRAMES = 64


def frame_messages(frame, stamp_s: float, frame_id: str, color_encoding: str = "rgb8",
                   depth_encoding: str = "auto", depth_stamp_s: Optional[float] = None
                   ) -> Tuple[Image, CameraInfo, Optional[Image], Optional[CameraInfo]]:
    """(colour Image, colour CameraInfo, depth Image or None, depth CameraInfo or None) of one
    ``sources.rgbd_folder.RGBDFrame``-like frame (``rgb``, ``depth``, ``depth_encoding``,
    ``camera_info``)."""
    header = Header(stamp=sec_to_stamp(stamp_s), frame_id=frame_id)
    rgb = frame.rgb
    color = array_to_image_msg(rgb if color_encoding == "rgb8" else rgb[..., ::-1],
                               color_encoding, header)
    info = camera_model_to_info(CameraModel.from_camera_info_dict(frame.camera_info), header)
    depth = dinfo = None
    if frame.depth is not None:
        enc = frame.depth_encoding if depth_encoding == "auto" else depth_encoding
        raw = frame.depth
        if enc != frame.depth_encoding:
            m = depth_to_metres(frame.depth, frame.depth_encoding)
            raw = metres_to_16uc1(m) if enc == "16UC1" else m.astype(np.float32)
        dheader = header if depth_stamp_s is None else Header(stamp=sec_to_stamp(depth_stamp_s),
                                                              frame_id=frame_id)
        depth = array_to_image_msg(raw, enc, dheader)
        dinfo = camera_model_to_info(CameraModel.from_camera_info_dict(frame.camera_info),
                                     dheader)
        if (raw.shape[1], raw.shape[0]) != (info.width, info.height):
            m = CameraModel.from_camera_info_dict(frame.camera_info).scaled(raw.shape[1],
                                                                            raw.shape[0])
            dinfo = camera_model_to_info(m, dheader)
    return color, info, depth, dinfo


def load_frames(source: str, max_frames: int = 0):
    """The frames of ``source`` (see module docstring) as a list, and a description."""
    from ..sources.sample import load_source
    seq = load_source(source or None, frames=max_frames or None)
    frames = list(seq.frames)
    if not frames:
        raise ValueError(f"source '{source}' has no frames")
    return frames, getattr(seq, "description", "") or getattr(seq, "name", source)


class SampleCameraNode(Node):
    """Publishes frames from ``source`` at ``rate_hz`` (see module docstring)."""

    def __init__(self, frames: Optional[List[Any]] = None, node_name: str = "sample_camera",
                 description: str = "", **node_kwargs) -> None:
        startup = CLOCK.begin()
        super().__init__(node_name, **node_kwargs)
        specs = camera_specs()
        self.p, errors = declare_checked(self, specs)
        if errors:
            raise ParameterError(f"invalid parameters of {self.get_name()}:\n  - "
                                 + "\n  - ".join(errors))
        if frames is None:
            frames, desc = load_frames(self.p["source"], self.p["max_frames"])
        else:
            desc = description or f"{len(frames)} frames given in code"
        self.frames = frames
        CLOCK.mark("frames (loaded or generated)")
        ns = self.p["camera_namespace"]
        qos = QoSProfile(depth=5, reliability=(QoSReliabilityPolicy.RELIABLE if self.p["reliable"]
                                               else QoSReliabilityPolicy.BEST_EFFORT))
        t = {k: resolve_topic(ns, self.p[f"{k}_topic"]) for k in
             ("color_image", "color_info", "depth_image", "depth_info")}
        self.topics = t
        self.pub_color = self.create_publisher(Image, t["color_image"], qos)
        self.pub_info = self.create_publisher(CameraInfo, t["color_info"], qos)
        self.pub_depth = self.create_publisher(Image, t["depth_image"], qos)
        self.pub_dinfo = self.create_publisher(CameraInfo, t["depth_info"], qos)
        self.index = 0           # frames published so far
        self._messages: Dict[int, tuple] = {}   # frame index -> its messages (short loops)
        self.done = False
        self.published: List[Tuple[int, float]] = []   # (frame index, stamp) of recent frames
        self._t0_wall: Optional[float] = None
        self._rec0: Optional[float] = None
        self.timer = self.create_timer(1.0 / self.p["rate_hz"], self.publish_next)
        self.get_logger().info(f"publishing {desc} at {self.p['rate_hz']:g} Hz on "
                               f"'{t['color_image']}'"
                               + (f" and '{t['depth_image']}'" if self.p["publish_depth"] else "")
                               + f"; start-up {CLOCK.summary(startup)}")

    def _stamps(self, k: int, frame) -> Tuple[float, Optional[float]]:
        now = self.get_clock().now().nanoseconds * 1e-9
        if self.p["stamp_mode"] == "now" or frame.stamp_s is None:
            return now, None
        n = len(self.frames)
        rec = [f.stamp_s if f.stamp_s is not None else i / self.p["rate_hz"]
               for i, f in enumerate(self.frames)]
        span = rec[-1] - rec[0] + 1.0 / self.p["rate_hz"]
        if self._t0_wall is None:
            self._t0_wall, self._rec0 = now, rec[0]
        loops = self.index // n
        t = self._t0_wall + (rec[k] - self._rec0) + loops * span
        d = None if frame.depth_stamp_s is None else t + (frame.depth_stamp_s - frame.stamp_s)
        return t, d

    def publish_next(self) -> None:
        """Publish the next frame (called by the timer)."""
        if self.done:
            return
        k = self.index % len(self.frames)
        frame = self.frames[k]
        stamp, dstamp = self._stamps(k, frame)
        frame_id = self.p["frame_id"] or getattr(frame, "frame_id", "") or DEFAULT_FRAME_ID
        msgs = self._messages.get(k)
        if msgs is None:
            msgs = frame_messages(frame, stamp, frame_id, self.p["color_encoding"],
                                  self.p["depth_encoding"], dstamp)
            if len(self.frames) <= MAX_CACHED_FRAMES:   # a loop then only restamps them
                self._messages[k] = msgs
        color, info, depth, dinfo = msgs
        for m, t in ((color, stamp), (info, stamp), (depth, dstamp), (dinfo, dstamp)):
            if m is not None:
                m.header.stamp = sec_to_stamp(stamp if t is None else t)
        self.pub_info.publish(info)
        if self.p["publish_depth"] and depth is not None:
            self.pub_dinfo.publish(dinfo)
            self.pub_depth.publish(depth)
        self.pub_color.publish(color)
        self.published.append((self.index, stamp))
        del self.published[:-1000]
        self.index += 1
        if not self.p["loop"] and self.index >= len(self.frames):
            self.done = True


def main(argv: Optional[List[str]] = None) -> int:
    """``pose-perception camera [--ros-args -p source:=DIR ...]``."""
    return run_node("sample_camera",
                    "usage: pose-perception camera [--ros-args -p source:=DIR -p rate_hz:=30 ...]\n"
                    "Parameters: README.md (ROS interface)",
                    SampleCameraNode, argv, until=lambda node: node.done)


if __name__ == "__main__":
    sys.exit(main())
