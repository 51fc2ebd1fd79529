"""REP-155 (ROS4HRI) output of pose_node, where ``hri_msgs`` is installed (else unavailable:
:func:`available` says why), so that ROS4HRI tools (``hri_engagement``, ``hri_person_manager``,
their RViz plugins) work on the package's people.

Per processed frame: ``/humans/bodies/tracked``, ``/humans/faces/tracked`` and
``/humans/persons/tracked`` (``hri_msgs/IdsList``); per body ``/humans/bodies/<id>/roi``
(``NormalizedRegionOfInterest2D``) and ``/humans/bodies/<id>/skeleton2d`` (``Skeleton2D``); per
face ``/humans/faces/<id>/roi``; per body ``/humans/bodies/<id>/posture`` (``BodyPosture``,
while known) and ``/gesture`` (``Gesture``, the most confident body gesture, while one goes on);
per person ``/humans/persons/<id>/engagement_status``
(``EngagementLevel``) and ``/humans/persons/<id>/{body_id,face_id}`` (``std_msgs/String``,
latched). Ids: ``b<track id>``, ``f<track id>``, ``p<track id>`` (core/rep155.py). TF frames
``body_<id>``, ``face_<id>``, ``gaze_<id>`` are broadcast where tf2_ros is installed (a ROS 2
apt install); the matrices come from core/rep155.py either way. Per-id publishers of ids gone
for ``forget_after_s`` are destroyed.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, String

from ..core import rep155
from . import compat

try:  # hri_msgs: ROS4HRI's messages (apt ros-<distro>-hri-msgs, or built from source)
    from hri_msgs.msg import (BodyPosture, EngagementLevel, Gesture, IdsList,
                              NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D,
                              Skeleton2D)
    _IMPORT_ERROR: Optional[str] = None
except ImportError as exc:  # pragma: no cover - depends on the installation
    _IMPORT_ERROR = str(exc)


def available() -> Tuple[bool, str]:
    """(whether hri_msgs can be imported, why not)."""
    return _IMPORT_ERROR is None, _IMPORT_ERROR or ""


def _broadcaster(node):
    """tf2_ros.TransformBroadcaster where installed, else None."""
    if compat.tf2_ros is None:
        return None
    return compat.tf2_ros.TransformBroadcaster(node)


class Rep155Publisher:
    """The REP-155 topics and frames of one pose_node (see the module docstring)."""

    def __init__(self, node, forget_after_s: float = 2.0) -> None:
        ok, why = available()
        if not ok:
            raise RuntimeError(f"hri_msgs is not installed ({why})")
        self.node = node
        self.forget_after_s = forget_after_s
        self.qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tracked = {kind: node.create_publisher(IdsList, f"/humans/{kind}/tracked", self.qos)
                        for kind in ("bodies", "faces", "persons")}
        self._pubs: Dict[str, object] = {}
        self._last_seen: Dict[str, float] = {}
        self.tf = _broadcaster(node)

    @property
    def broadcasts_tf(self) -> bool:
        return self.tf is not None

    def _pub(self, topic: str, msg_type, latched: bool = False):
        pub = self._pubs.get(topic)
        if pub is None:
            pub = self.node.create_publisher(msg_type, topic, self.latched if latched
                                             else self.qos)
            self._pubs[topic] = pub
        self._last_seen[topic] = time.monotonic()
        return pub

    def publish(self, result, interactions, header: Header, width: int, height: int,
                T: Optional[np.ndarray] = None) -> List[Tuple[str, np.ndarray]]:
        """Publish one frame (``T``: camera optical frame -> ``header.frame_id``, None =
        identity). Returns the TF frames (child frame name, 4x4 pose in ``header.frame_id``)."""
        engagement = {it.track_id: it for it in interactions}
        bodies, faces, persons, frames = [], [], [], []
        for p in result.persons:
            if p.track_id <= 0:
                continue
            bid, pid = rep155.body_id(p.track_id), rep155.person_id(p.track_id)
            bodies.append(bid)
            persons.append(pid)
            self._roi(f"/humans/bodies/{bid}/roi", p.box, header, width, height)
            sk = rep155.skeleton2d(p.body, width, height)
            if sk is not None:
                msg = Skeleton2D(header=header, skeleton=[
                    NormalizedPointOfInterest2D(x=float(x), y=float(y), c=float(c))
                    for x, y, c in sk])
                self._pub(f"/humans/bodies/{bid}/skeleton2d", Skeleton2D).publish(msg)
            self._pub(f"/humans/persons/{pid}/body_id", String, True).publish(String(data=bid))
            frames.append((f"body_{bid}", rep155.body_frame(p)))
            if p.face is not None:
                fid = rep155.face_id(p.track_id)
                self._pub(f"/humans/persons/{pid}/face_id", String, True).publish(
                    String(data=fid))
            it = engagement.get(p.track_id)
            if it is not None:
                self._pub(f"/humans/persons/{pid}/engagement_status", EngagementLevel).publish(
                    EngagementLevel(header=header, level=int(it.engagement)))
                self._body_language(bid, getattr(it, "body", None), header)
        for f in result.faces:
            if f.track_id <= 0:
                continue
            fid = rep155.face_id(f.track_id)
            faces.append(fid)
            self._roi(f"/humans/faces/{fid}/roi", f.box, header, width, height)
            face_T = rep155.face_frame(f.head_pose)
            frames.append((f"face_{fid}", face_T))
            frames.append((f"gaze_{fid}", rep155.gaze_frame(f.gaze, face_T)))
        for kind, ids in (("bodies", bodies), ("faces", faces), ("persons", persons)):
            self.tracked[kind].publish(IdsList(header=header, ids=ids))
        frames = [(name, M if T is None else T @ M) for name, M in frames if M is not None]
        if self.tf is not None and frames:
            self.tf.sendTransform([compat.transform_stamped(header.frame_id, name, M,
                                                            header.stamp)
                                   for name, M in frames])
        self._forget()
        return frames

    def _body_language(self, bid: str, body, header: Header) -> None:
        """``/humans/bodies/<id>/posture`` (while known) and ``/gesture`` (while one goes on)."""
        posture, gesture = rep155.hri_posture(body), rep155.hri_gesture(body)
        if posture is not None:
            self._pub(f"/humans/bodies/{bid}/posture", BodyPosture).publish(
                BodyPosture(header=header, posture=posture))
        if gesture is not None:
            self._pub(f"/humans/bodies/{bid}/gesture", Gesture).publish(
                Gesture(header=header, gesture=gesture))

    def _roi(self, topic: str, box, header: Header, width: int, height: int) -> None:
        x0, y0, x1, y1 = (float(v) for v in rep155.normalized_roi(box, width, height))
        self._pub(topic, NormalizedRegionOfInterest2D).publish(NormalizedRegionOfInterest2D(
            header=header, xmin=x0, ymin=y0, xmax=x1, ymax=y1, c=1.0))

    def _forget(self) -> None:
        now = time.monotonic()
        for topic in [t for t, seen in self._last_seen.items()
                      if now - seen > self.forget_after_s]:
            self.node.destroy_publisher(self._pubs.pop(topic))
            del self._last_seen[topic]
