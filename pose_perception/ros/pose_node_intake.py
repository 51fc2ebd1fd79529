"""pose_node's subscriptions, which only *store*: colour and depth images paired by an
approximate-time synchroniser, the newest pair (or a colour image going alone, see
core.frame_order.DepthWait) put in the slot the worker takes it from, CameraInfo kept, arrivals
counted and the camera's own stamp order checked.

A mixin of :class:`pose_perception.ros.pose_node.PoseNode`: it uses the node's parameters
(``self.p``), diagnostics, locks, slot and stamp rules set up in ``PoseNode.__init__``.
"""
from __future__ import annotations

import time
from typing import Optional

from sensor_msgs.msg import CameraInfo, Image

from . import compat
from .conversions import stamp_to_ns, stamp_to_sec
from .diagnostics import WARN
from .node_support import camera_info_qos, sensor_qos
from .params import resolve_topic

ARRIVALS_KEPT = 64         # arrival times of images still unpaired (for the synchroniser's wait)


class ImageIntake:
    """Subscriptions and their callbacks (store only) of the pose node."""

    def _make_subscriptions(self) -> None:
        p, ns = self.p, self.p["camera_namespace"]
        self.topics = {k: resolve_topic(ns, p[f"{k}_topic"]) for k in
                       ("color_image", "color_info", "depth_image", "depth_info")}
        qos = sensor_qos(p["qos_reliability"], p["qos_depth"])
        info_qos = camera_info_qos(p["qos_reliability"])
        self.create_subscription(CameraInfo, self.topics["color_info"], self._on_color_info,
                                 info_qos)
        if not p["use_depth"]:
            self.create_subscription(Image, self.topics["color_image"], self._on_color_only, qos)
            self.diag.fact("depth path", "none (use_depth false: RGB only)")
            return
        self.create_subscription(CameraInfo, self.topics["depth_info"], self._on_depth_info,
                                 info_qos)
        self._sub_color = compat.Subscriber(self, Image, self.topics["color_image"],
                                            qos_profile=qos)
        self._sub_depth = compat.Subscriber(self, Image, self.topics["depth_image"],
                                            qos_profile=qos)
        # a filter's callbacks run in the order they were registered: arrivals are noted before
        # the synchroniser sees a message, the colour-alone decision after it
        self._sub_color.registerCallback(self._on_colour_arrival)
        self._sub_depth.registerCallback(self._on_depth_arrival)
        # message_filters pairs only stamps *less* than the slop apart: 1 ns makes a slop of 0
        # pair identical stamps (the fallback pairs up to and including the slop)
        self._sync = compat.ApproximateTimeSynchronizer(
            [self._sub_color, self._sub_depth], p["sync_queue_size"],
            max(p["sync_slop_s"], 1e-9))
        self._sync.registerCallback(self._on_pair)
        self._sub_color.registerCallback(self._on_color_maybe_alone)

    # ------------------------------------------------------------------ callbacks (store only)
    def _now(self) -> float:
        return time.monotonic()

    def _offer(self, color: Image, depth: Optional[Image]) -> None:
        with self._lock:
            if self._slot is not None:
                with self._diag_lock:
                    self.diag.count("dropped", self._now())
            self._slot = (color, depth)
            self._lock.notify()

    def _on_color_info(self, msg: CameraInfo) -> None:
        self._color_info = msg

    def _on_depth_info(self, msg: CameraInfo) -> None:
        self._depth_info = msg

    def _on_color_only(self, msg: Image) -> None:
        self._on_colour_arrival(msg)
        self._offer(msg, None)

    def _on_colour_arrival(self, msg: Image) -> None:
        """Every colour image, before the synchroniser sees it: counted, its arrival noted (for
        the synchroniser's wait), and the camera's own stamp order checked."""
        now = self._now()
        stamp = stamp_to_sec(msg.header.stamp)
        with self._diag_lock:
            self.diag.count("input", now)
        self._note_arrival("colour", msg, now)
        back = self._order.arrived(stamp)
        if back is not None:
            self._issue("time_order", WARN,
                        f"the camera's image stamps went backwards: colour image stamped "
                        f"{stamp:.6f} arrived after one stamped {stamp + back:.6f} (duplicated "
                        "or out of order); it is not processed")

    def _on_depth_arrival(self, msg: Image) -> None:
        self._last_depth_stamp = stamp_to_sec(msg.header.stamp)
        self._note_arrival("depth", msg, self._now())

    def _note_arrival(self, kind: str, msg: Image, now: float) -> None:
        key = (kind, stamp_to_ns(msg.header.stamp))
        self._arrivals.setdefault(key, now)
        while len(self._arrivals) > ARRIVALS_KEPT:     # oldest insertion first
            self._arrivals.pop(next(iter(self._arrivals)))

    def _on_pair(self, color: Image, depth: Image) -> None:
        """A synchronised pair (in the callback of its later message): its wait in the
        synchroniser (from the first of the two arriving) goes to the diagnostics."""
        now = self._now()
        c_ns, d_ns = stamp_to_ns(color.header.stamp), stamp_to_ns(depth.header.stamp)
        first = min(self._arrivals.pop(("colour", c_ns), now),
                    self._arrivals.pop(("depth", d_ns), now))
        self._last_paired_colour = c_ns
        self._depth_wait.paired()
        with self._diag_lock:
            self.diag.count("synchronised pairs", now)
            self.diag.latency_ms("sync wait", (now - first) * 1e3)
        self._offer(color, depth)

    def _on_color_maybe_alone(self, msg: Image) -> None:
        """After the synchroniser saw the colour image: if it formed no pair, it goes alone when
        colour has come for depth_wait_s without pairs (core.frame_order.DepthWait); else it
        waits for its depth (the worker hands it over alone if none comes in depth_wait_s)."""
        if stamp_to_ns(msg.header.stamp) == self._last_paired_colour:
            return
        if self._depth_wait.colour(msg, self._now()):
            self._colour_alone(msg)

    def _colour_alone(self, msg: Image) -> None:
        stamp = stamp_to_sec(msg.header.stamp)
        if self._last_depth_stamp is None:
            why = (f"no depth image received on '{self.topics['depth_image']}'")
        else:
            why = (f"colour and depth are not synchronised: latest stamps differ by "
                   f"{stamp - self._last_depth_stamp:+.3f} s (sync_slop_s = "
                   f"{self.p['sync_slop_s']} s)")
        self._issue("depth", WARN, f"{why}; processing colour alone (2D only)")
        self._offer(msg, None)
