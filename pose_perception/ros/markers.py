"""RViz markers of the people: joints as spheres coloured by confidence, bones as a LINE_LIST, a
text label (track id and distance), hand bones and face points.

Markers live in the skeletons' header frame and stamp, under the namespaces ``joints``,
``bones``, ``hands``, ``labels`` and ``face``; marker ``id`` = track id (untracked people get ids
from 100000 up). Stale markers never linger: every marker has a ``lifetime``, a person who
disappears gets DELETE markers, and a frame with nobody produces one DELETEALL.
Only points with valid 3D are drawn (nothing in RGB-only mode).
"""
from __future__ import annotations

import math
from typing import Iterable, List, Optional, Set, Tuple

from builtin_interfaces.msg import Duration as DurationMsg
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ..core.body_language import gesture_words
from ..core.colors import confidence_rgb, track_rgb
from ..core.layouts import LAYOUTS

UNTRACKED_ID_BASE = 100000
NAMESPACES = ("joints", "bones", "hands", "labels", "face")


def confidence_color(c: float, alpha: float = 1.0) -> ColorRGBA:
    """Red (0) -> yellow (0.5) -> green (1)."""
    r, g, b = confidence_rgb(c)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def track_color(track_id: int, alpha: float = 1.0) -> ColorRGBA:
    """A stable, distinct colour per track id."""
    r, g, b = track_rgb(track_id)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _duration(seconds: float) -> DurationMsg:
    ns = int(round(max(0.0, seconds) * 1e9))
    return DurationMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _valid_points(kps) -> List[Tuple[int, Point, float]]:
    out = []
    for i, k in enumerate(kps):
        p = k.position
        if k.position_valid and math.isfinite(p.x) and math.isfinite(p.y) and math.isfinite(p.z):
            out.append((i, Point(x=p.x, y=p.y, z=p.z), k.confidence))
    return out


# engagement state (PersonInteraction.ENGAGEMENT_*) -> colour and name
ENGAGEMENT_COLORS = {0: ColorRGBA(r=0.6, g=0.6, b=0.6, a=0.9),    # unknown: grey
                     1: ColorRGBA(r=0.3, g=0.5, b=1.0, a=0.9),    # disengaged: blue
                     2: ColorRGBA(r=1.0, g=0.8, b=0.1, a=0.9),    # engaging: yellow
                     3: ColorRGBA(r=0.1, g=0.9, b=0.2, a=0.9),    # engaged: green
                     4: ColorRGBA(r=1.0, g=0.5, b=0.1, a=0.9)}    # disengaging: orange
ENGAGEMENT_NAMES = {0: "UNKNOWN", 1: "DISENGAGED", 2: "ENGAGING", 3: "ENGAGED",
                    4: "DISENGAGING"}


POSTURE_NAMES = {1: "standing", 2: "sitting", 3: "crouching", 4: "lying"}


class MarkerBuilder:
    """Builds a MarkerArray per frame and remembers which markers it drew, to delete the ones
    of people who left."""

    def __init__(self, lifetime_s: float = 0.5, joint_scale: float = 0.05,
                 bone_width: float = 0.02, face_point_scale: float = 0.006,
                 min_confidence: float = 0.0) -> None:
        self.lifetime = _duration(lifetime_s)
        self.joint_scale, self.bone_width = joint_scale, bone_width
        self.face_point_scale, self.min_confidence = face_point_scale, min_confidence
        self._drawn: Set[Tuple[str, int]] = set()

    def _marker(self, header, ns: str, mid: int, mtype: int) -> Marker:
        m = Marker(ns=ns, id=int(mid), type=mtype, action=Marker.ADD)
        m.header = header
        m.lifetime = self.lifetime
        m.pose.orientation.w = 1.0
        m.frame_locked = False
        return m

    def build(self, skeletons, faces=None, interaction=None) -> MarkerArray:
        """Markers of one frame (``skeletons``: SkeletonArray; ``faces``: FaceLandmarksArray;
        ``interaction``: PersonInteractionArray, drawn as gaze arrows coloured by
        engagement, pointing rays and targets, and posture and gestures in the labels)."""
        header = skeletons.header
        out = MarkerArray()
        now: Set[Tuple[str, int]] = set()
        notes = {}
        for it in (interaction.people if interaction is not None else ()):
            out.markers += self._gaze(header, it, now)
            out.markers += self._pointing(header, it, now)
            notes[it.track_id] = self.body_language_text(it)
        for n, s in enumerate(skeletons.skeletons):
            mid = s.track_id if s.track_id > 0 else UNTRACKED_ID_BASE + n
            out.markers += self._skeleton(header, s, mid, now, notes.get(s.track_id, ""))
        for n, f in enumerate(faces.faces if faces is not None else ()):
            fid = f.face_id if f.face_id > 0 else UNTRACKED_ID_BASE + n
            pts = [p for _, p, c in _valid_points(f.landmarks) if c >= self.min_confidence]
            if pts:
                m = self._marker(header, "face", fid, Marker.POINTS)
                m.scale.x = m.scale.y = self.face_point_scale
                m.color = track_color(f.skeleton_id or fid, 0.9)
                m.points = pts
                out.markers.append(m)
                now.add(("face", fid))
        if not now:
            d = Marker(action=Marker.DELETEALL)
            d.header = header
            out.markers = [d]
        else:
            for ns, mid in sorted(self._drawn - now):
                d = Marker(ns=ns, id=int(mid), action=Marker.DELETE)
                d.header = header
                out.markers.append(d)
        self._drawn = now
        return out

    def _skeleton(self, header, s, mid: int, now: Set[Tuple[str, int]],
                  note: str = "") -> Iterable[Marker]:
        if s.found_by == s.FOUND_BY_BOX:
            return self._box_only(header, s, mid, now)
        pts = [(i, p, c) for i, p, c in _valid_points(s.keypoints) if c >= self.min_confidence]
        if not pts:
            return []
        out = []
        j = self._marker(header, "joints", mid, Marker.SPHERE_LIST)
        j.scale.x = j.scale.y = j.scale.z = self.joint_scale
        j.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        j.points = [p for _, p, _ in pts]
        j.colors = [confidence_color(c) for _, _, c in pts]
        out.append(j)
        now.add(("joints", mid))
        layout = LAYOUTS.get(s.layout)
        bones = self._bones(header, "bones", mid, layout.edges if layout else (), pts,
                            track_color(s.track_id or mid))
        if bones is not None:
            out.append(bones)
            now.add(("bones", mid))
        hand_pts: List = []
        for hand in (s.left_hand, s.right_hand):
            hp = [(i, p, c) for i, p, c in _valid_points(hand) if c >= self.min_confidence]
            hb = self._bones(header, "hands", mid, LAYOUTS["hand21"].edges, hp,
                             track_color(s.track_id or mid))
            if hb is not None:
                hand_pts += hb.points
        if hand_pts:
            m = self._marker(header, "hands", mid, Marker.LINE_LIST)
            m.scale.x = self.bone_width * 0.5
            m.color = track_color(s.track_id or mid)
            m.points = hand_pts
            out.append(m)
            now.add(("hands", mid))
        out.append(self._label(header, s, mid, s.centroid if s.centroid_valid else pts[0][1],
                               "", note))
        now.add(("labels", mid))
        return out

    def _label(self, header, s, mid: int, anchor, note: str, below: str = "") -> Marker:
        t = self._marker(header, "labels", mid, Marker.TEXT_VIEW_FACING)
        t.pose.position.x, t.pose.position.y, t.pose.position.z = anchor.x, anchor.y, anchor.z
        t.scale.z = 0.12
        t.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        dist = math.sqrt(anchor.x ** 2 + anchor.y ** 2 + anchor.z ** 2)
        who = f"id {s.track_id}" if s.track_id > 0 else "untracked"
        t.text = f"{who}{note}  {dist:.2f} m" + (f"\n{below}" if below else "")
        return t

    def _gaze(self, header, it, now: Set[Tuple[str, int]]) -> Iterable[Marker]:
        """A 1 m arrow along the gaze (namespace ``gaze``), coloured by engagement, and the
        engagement state as text above the head (namespace ``engagement``)."""
        if not it.gaze_valid or it.track_id <= 0:
            return []
        o, d = it.gaze_origin, it.gaze_direction
        a = self._marker(header, "gaze", it.track_id, Marker.ARROW)
        a.points = [Point(x=o.x, y=o.y, z=o.z),
                    Point(x=o.x + d.x, y=o.y + d.y, z=o.z + d.z)]
        a.scale.x, a.scale.y, a.scale.z = 0.015, 0.03, 0.05
        a.color = ENGAGEMENT_COLORS.get(it.engagement, ENGAGEMENT_COLORS[0])
        t = self._marker(header, "engagement", it.track_id, Marker.TEXT_VIEW_FACING)
        t.pose.position.x, t.pose.position.y, t.pose.position.z = o.x, o.y - 0.25, o.z
        t.scale.z = 0.1
        t.color = a.color
        t.text = ENGAGEMENT_NAMES.get(it.engagement, "?") + (" (looking)" if it.looking_at_robot
                                                             else "")
        now.add(("gaze", it.track_id))
        now.add(("engagement", it.track_id))
        return [a, t]

    def _pointing(self, header, it, now: Set[Tuple[str, int]]) -> Iterable[Marker]:
        """The pointing ray (namespace ``pointing``: to the target, else 2 m long) and the
        target (``pointing_target``: a sphere of diameter 2 sigma, at least 5 cm)."""
        if not it.pointing or it.track_id <= 0:
            return []
        o, d, tg = it.pointing_origin, it.pointing_direction, it.pointing_target
        end = tg if it.pointing_target_valid else \
            Point(x=o.x + 2 * d.x, y=o.y + 2 * d.y, z=o.z + 2 * d.z)
        a = self._marker(header, "pointing", it.track_id, Marker.ARROW)
        a.points = [Point(x=o.x, y=o.y, z=o.z), Point(x=end.x, y=end.y, z=end.z)]
        a.scale.x, a.scale.y, a.scale.z = 0.01, 0.025, 0.04
        a.color = ColorRGBA(r=1.0, g=0.55, b=0.0, a=0.9)
        now.add(("pointing", it.track_id))
        if not it.pointing_target_valid:
            return [a]
        m = self._marker(header, "pointing_target", it.track_id, Marker.SPHERE)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = tg.x, tg.y, tg.z
        size = max(0.05, 2.0 * float(it.pointing_target_sigma))
        m.scale.x = m.scale.y = m.scale.z = size if math.isfinite(size) else 0.05
        m.color = ColorRGBA(r=1.0, g=0.55, b=0.0, a=0.6)
        now.add(("pointing_target", it.track_id))
        return [a, m]

    @staticmethod
    def body_language_text(it) -> str:
        """Posture and gestures of a PersonInteraction in words ('' when there is none)."""
        words = [POSTURE_NAMES.get(it.posture, "")] + [gesture_words(g) for g in it.gestures]
        return ", ".join(w for w in words if w)

    def _box_only(self, header, s, mid: int, now: Set[Tuple[str, int]]) -> Iterable[Marker]:
        """A person known by a whole-body box only: a translucent sphere at the measured nearest
        surface (namespace ``box_only``) and a label."""
        if not s.centroid_valid:
            return []
        m = self._marker(header, "box_only", mid, Marker.SPHERE)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = \
            s.centroid.x, s.centroid.y, s.centroid.z
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = 0.4
        m.color = track_color(s.track_id or mid, alpha=0.5)
        now.add(("box_only", mid))
        now.add(("labels", mid))
        return [m, self._label(header, s, mid, s.centroid, " (box only)")]

    def _bones(self, header, ns: str, mid: int, edges, pts, color) -> Optional[Marker]:
        by_index = {i: p for i, p, _ in pts}
        line: List[Point] = []
        for a, b in edges:
            if a in by_index and b in by_index:
                line += [by_index[a], by_index[b]]
        if not line:
            return None
        m = self._marker(header, ns, mid, Marker.LINE_LIST)
        m.scale.x = self.bone_width
        m.color = color
        m.points = line
        return m
