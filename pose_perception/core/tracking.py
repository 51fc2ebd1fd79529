"""Multi-person tracking: stable track ids for the people of consecutive frames.

ROS-free. One :class:`Tracker` per camera stream::

    tracker = Tracker(TrackerConfig(max_age_s=1.0))
    for frame in frames:                       # FrameResult from the pipeline
        tracker.update(frame.persons, stamp_s)  # sets Person.track_id in place

Association (per frame): every live track is predicted to the frame's stamp with a constant
velocity model (box, keypoints and the 3D torso centroid), then each (track, detection) pair gets
a cost in [0, 1], the weighted mean of the available terms

- ``1 - IoU`` of the predicted box and the detection's box,
- mean 2D distance of the keypoints confident in both, in units of
  ``keypoint_distance_scale * sqrt(box area)``, clipped to 1,
- 3D distance of the torso centroids (when both have one), in units of ``max_distance_3d_m``,
  clipped to 1; a pair further apart than ``max_distance_3d_m`` is never matched.

The assignment is solved with the Hungarian method (``scipy.optimize.linear_sum_assignment``);
pairs costing more than ``max_cost`` are rejected (gating). Unmatched detections start new tracks;
a track needs ``min_hits`` matched frames before it is confirmed and gets its public id
(positive, increasing, never reused within the lifetime of the Tracker, not even after
:meth:`Tracker.reset`). Tentative tracks are dropped at their first miss. A confirmed track
survives ``max_age_s`` without a match (occlusion) and is then retired for good.

Time: a duplicated stamp is matched without prediction and does not update velocities; a stamp
that goes backwards (bag loop) resets the tracker; a jump larger than ``max_age_s`` retires every
track before matching.

Faces without a body are tracked the same way by a second Tracker (:meth:`Tracker.update_faces`:
box, mesh points, 3D centre of the mesh) that draws its ids from the same counter as the people's
tracker (``ids``), so a face's id never equals a person's.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import box_iou_matrix, finite_rows, point_median, vector_norm
from .types import Face, Keypoints, Person

# BlazePose-33 torso joints: shoulders and hips
TORSO_BLAZEPOSE33 = (11, 12, 23, 24)
_TORSO = {"blazepose33": TORSO_BLAZEPOSE33, "coco17": (5, 6, 11, 12)}

_TIME_EPS = 1e-9
_INVALID = 1e6  # cost of a forbidden pair (above any gate)


def torso_centroid(body: Keypoints, min_score: float = 0.0,
                   min_points: int = 2) -> Optional[np.ndarray]:
    """Robust 3D torso position: per-axis median of the valid torso joints (shoulders, hips).

    Falls back to the median of all valid joints when fewer than ``min_points`` torso joints are
    valid (but at least 3 others are). Joints need ``score >= min_score``. Returns a (3,) float64
    array, or None when there is no usable 3D.
    """
    if body.xyz is None or body.xyz_valid is None:
        return None
    ok = body.xyz_valid & finite_rows(body.xyz) & (body.score >= min_score)
    torso = _TORSO.get(body.layout)
    if torso is not None:
        sel = [i for i in torso if ok[i]]
        if len(sel) >= min_points:
            return point_median(body.xyz[sel].astype(np.float64))
    if np.count_nonzero(ok) >= max(3, min_points):
        return point_median(body.xyz[ok].astype(np.float64))
    return None


def person_centroid(person: Person, min_score: float = 0.0) -> Optional[np.ndarray]:
    """``person.centroid`` when set and finite, else :func:`torso_centroid` of its body."""
    c = person.centroid
    if c is not None:
        c = np.asarray(c, np.float64).reshape(3)
        if np.isfinite(c).all():
            return c
    return torso_centroid(person.body, min_score)


@dataclass
class TrackerConfig:
    """Parameters of :class:`Tracker` (units in the names)."""

    max_age_s: float = 1.0            # a track unmatched for longer is retired
    min_hits: int = 1                 # matched frames before a track is confirmed (1 = at once)
    max_cost: float = 0.75            # gate: pairs with a higher cost are never matched
    iou_weight: float = 1.0
    keypoint_weight: float = 1.0
    position_3d_weight: float = 1.0
    min_keypoint_score: float = 0.3   # keypoints used for the 2D distance term
    min_common_keypoints: int = 3     # fewer common confident keypoints: no 2D distance term
    keypoint_distance_scale: float = 0.5  # mean distance / sqrt(box area) giving cost 1
    max_distance_3d_m: float = 1.0    # centroid distance giving cost 1; further pairs rejected
    velocity_gain: float = 0.5        # weight of the newest velocity measurement (0..1]
    max_prediction_s: float = 0.5     # constant-velocity extrapolation is capped to this horizon
    output_tentative: bool = True     # return unconfirmed people too (with track_id 0)

    def __post_init__(self) -> None:
        if self.max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {self.max_age_s}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if not 0 < self.max_cost <= 1:
            raise ValueError(f"max_cost must be in (0, 1], got {self.max_cost}")
        if min(self.iou_weight, self.keypoint_weight, self.position_3d_weight) < 0 or \
                self.iou_weight + self.keypoint_weight + self.position_3d_weight <= 0:
            raise ValueError("cost weights must be >= 0 and not all 0")
        if not 0 < self.velocity_gain <= 1:
            raise ValueError(f"velocity_gain must be in (0, 1], got {self.velocity_gain}")
        if self.keypoint_distance_scale <= 0 or self.max_distance_3d_m <= 0:
            raise ValueError("keypoint_distance_scale and max_distance_3d_m must be > 0")


@dataclass
class TrackInfo:
    """Read-only snapshot of one live track (for diagnostics and visualisation)."""

    track_id: int              # 0 while tentative
    confirmed: bool
    hits: int
    age_s: float               # since the track was created
    time_since_update_s: float
    box: np.ndarray            # last observed box (4,)
    box_velocity: np.ndarray   # (4,) px/s
    centroid: Optional[np.ndarray]          # last observed 3D centroid (3,) metres
    centroid_velocity: Optional[np.ndarray]  # (3,) m/s


class _Track:
    __slots__ = ("track_id", "hits", "first_s", "last_s", "box", "box_vel", "xy", "kp_ok",
                 "centroid", "centroid_vel", "has_vel")

    def __init__(self, det: "_Det", stamp_s: float) -> None:
        self.track_id = 0
        self.hits = 1
        self.first_s = self.last_s = stamp_s
        self.box, self.xy, self.kp_ok, self.centroid = det.box, det.xy, det.kp_ok, det.centroid
        self.box_vel = np.zeros(4)
        self.centroid_vel: Optional[np.ndarray] = None
        self.has_vel = False

    def predict(self, stamp_s: float, horizon_s: float):
        """(box, xy, centroid) extrapolated to ``stamp_s`` (constant velocity, capped horizon)."""
        dt = min(max(stamp_s - self.last_s, 0.0), horizon_s)
        if not self.has_vel or dt <= 0:
            return self.box, self.xy, self.centroid
        box = self.box + self.box_vel * dt
        v0, v1, v2, v3 = self.box_vel.tolist()
        xy = self.xy + 0.5 * np.array([v0 + v2, v1 + v3]) * dt   # box centre velocity
        c = self.centroid
        if c is not None and self.centroid_vel is not None:
            c = c + self.centroid_vel * dt
        return box, xy, c

    def correct(self, det: "_Det", stamp_s: float, gain: float) -> None:
        dt = stamp_s - self.last_s
        if dt > _TIME_EPS:   # a duplicated stamp updates positions only
            v = (det.box - self.box) / dt
            self.box_vel = gain * v + (1 - gain) * self.box_vel if self.has_vel else v
            if det.centroid is not None and self.centroid is not None:
                cv = (det.centroid - self.centroid) / dt
                self.centroid_vel = cv if self.centroid_vel is None else \
                    gain * cv + (1 - gain) * self.centroid_vel
            else:
                self.centroid_vel = None
            self.has_vel = True
        self.box, self.xy, self.kp_ok, self.centroid = det.box, det.xy, det.kp_ok, det.centroid
        self.hits += 1
        self.last_s = max(self.last_s, stamp_s)


class _Det:
    __slots__ = ("box", "xy", "kp_ok", "centroid")

    def __init__(self, box, kps: Keypoints, min_score: float,
                 centroid: Optional[np.ndarray]) -> None:
        self.box = np.asarray(box, np.float64).reshape(4)
        if not np.isfinite(self.box).all():
            raise ValueError(f"box must be finite, got {self.box}")
        self.xy = kps.xy.astype(np.float64)
        self.kp_ok = (kps.score >= min_score) & finite_rows(self.xy)
        self.centroid = centroid

    @classmethod
    def of_person(cls, person: Person, min_score: float) -> "_Det":
        return cls(person.box, person.body, min_score, person_centroid(person))

    @classmethod
    def of_face(cls, face: Face, min_score: float) -> "_Det":
        return cls(face.box, face.mesh, min_score, mesh_centroid(face.mesh))


def mesh_centroid(mesh: Keypoints) -> Optional[np.ndarray]:
    """Per-axis median of a face mesh's valid 3D points (at least 3), else None."""
    if mesh.xyz is None or mesh.xyz_valid is None:
        return None
    ok = mesh.xyz_valid & finite_rows(mesh.xyz)
    return point_median(mesh.xyz[ok].astype(np.float64)) if np.count_nonzero(ok) >= 3 else None


class Tracker:
    """Assigns stable ``track_id`` s to the people of successive frames (see module docstring)."""

    def __init__(self, config: Optional[TrackerConfig] = None,
                 ids: Optional[Iterator[int]] = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: List[_Track] = []
        self._last_stamp: Optional[float] = None
        self._ids = ids if ids is not None else itertools.count(1)   # public ids to hand out

    # ------------------------------------------------------------------ public API
    def reset(self) -> None:
        """Forget every track (e.g. a bag loop). Ids already given out are still never reused."""
        self._tracks = []
        self._last_stamp = None

    @property
    def tracks(self) -> List[TrackInfo]:
        """Snapshots of the live tracks (confirmed and tentative)."""
        now = self._last_stamp if self._last_stamp is not None else 0.0
        return [TrackInfo(t.track_id, t.track_id > 0, t.hits, now - t.first_s, now - t.last_s,
                          t.box.copy(), t.box_vel.copy(),
                          None if t.centroid is None else t.centroid.copy(),
                          None if t.centroid_vel is None else t.centroid_vel.copy())
                for t in self._tracks]

    def update(self, persons: Sequence[Person], stamp_s: float) -> List[Person]:
        """Match ``persons`` (one frame, taken at ``stamp_s`` seconds) to the live tracks.

        Sets ``track_id`` on each Person in place (0 while its track is tentative) and returns
        them in input order (without the tentative ones when ``output_tentative`` is False).
        """
        min_score = self.config.min_keypoint_score
        return self._update(persons, [_Det.of_person(p, min_score) for p in persons], stamp_s)

    def update_faces(self, faces: Sequence[Face], stamp_s: float) -> List[Face]:
        """:meth:`update` for faces without a body (a Tracker of their own)."""
        min_score = self.config.min_keypoint_score
        return self._update(faces, [_Det.of_face(f, min_score) for f in faces], stamp_s)

    def _update(self, items, dets: List[_Det], stamp_s: float) -> list:
        cfg = self.config
        stamp_s = float(stamp_s)
        if not np.isfinite(stamp_s):
            raise ValueError(f"stamp must be finite, got {stamp_s}")
        if self._last_stamp is not None and stamp_s < self._last_stamp - _TIME_EPS:
            self.reset()                            # time went backwards: bag loop
        self._last_stamp = stamp_s if self._last_stamp is None else max(self._last_stamp, stamp_s)
        # retire tracks unmatched for longer than max_age_s (a time jump retires everyone)
        self._tracks = [t for t in self._tracks if stamp_s - t.last_s <= cfg.max_age_s]

        matches, unmatched_dets = self._associate(dets, stamp_s)

        matched_tracks = set()
        for ti, di in matches:
            track = self._tracks[ti]
            track.correct(dets[di], stamp_s, cfg.velocity_gain)
            matched_tracks.add(ti)
            self._maybe_confirm(track)
            items[di].track_id = track.track_id
        new_tracks = []
        for di in unmatched_dets:
            track = _Track(dets[di], stamp_s)
            self._maybe_confirm(track)
            items[di].track_id = track.track_id
            new_tracks.append(track)

        # tentative tracks are dropped at their first miss; confirmed ones coast (max_age_s)
        self._tracks = [t for i, t in enumerate(self._tracks)
                        if i in matched_tracks or t.track_id > 0] + new_tracks

        if cfg.output_tentative:
            return list(items)
        return [p for p in items if p.track_id > 0]

    # ------------------------------------------------------------------ internals
    def _maybe_confirm(self, track: _Track) -> None:
        if track.track_id == 0 and track.hits >= self.config.min_hits:
            track.track_id = next(self._ids)

    def _associate(self, dets: List[_Det], stamp_s: float):
        n_t, n_d = len(self._tracks), len(dets)
        if n_t == 0 or n_d == 0:
            return [], list(range(n_d))
        cost = self._cost_matrix(dets, stamp_s)
        rows, cols = linear_sum_assignment(cost)
        matches = [(r, c) for r, c in zip(rows, cols) if cost[r, c] <= self.config.max_cost]
        matched_d = {c for _, c in matches}
        return matches, [d for d in range(n_d) if d not in matched_d]

    def _cost_matrix(self, dets: List[_Det], stamp_s: float) -> np.ndarray:
        """(tracks x detections) association cost in [0, 1]; forbidden pairs get 1e6."""
        cfg = self.config
        preds = [t.predict(stamp_s, cfg.max_prediction_s) for t in self._tracks]
        pred_boxes = np.array([p[0] for p in preds])
        det_boxes = np.array([d.box for d in dets])
        iou = box_iou_matrix(pred_boxes, det_boxes).tolist()
        cost = np.zeros((len(preds), len(dets)))
        for i, (box, xy, centroid) in enumerate(preds):
            track = self._tracks[i]
            x0, y0, x1, y1 = box.tolist()
            scale = math.sqrt(max((x1 - x0) * (y1 - y0), 1.0))
            for j, det in enumerate(dets):
                d3 = None
                if centroid is not None and det.centroid is not None:
                    d3 = vector_norm(centroid - det.centroid)
                    if d3 > cfg.max_distance_3d_m:     # never matched: no other term needed
                        cost[i, j] = _INVALID
                        continue
                num = cfg.iou_weight * (1.0 - iou[i][j])
                den = cfg.iou_weight
                common = track.kp_ok & det.kp_ok
                if cfg.keypoint_weight > 0 and \
                        np.count_nonzero(common) >= cfg.min_common_keypoints:
                    # the mean distance, as np.linalg.norm(e, axis=1).mean() computes it
                    e = xy[common] - det.xy[common]
                    r = np.sqrt(e[:, 0] * e[:, 0] + e[:, 1] * e[:, 1])
                    d = np.add.reduce(r) / len(r)
                    num += cfg.keypoint_weight * min(d / (cfg.keypoint_distance_scale * scale), 1.0)
                    den += cfg.keypoint_weight
                if d3 is not None:
                    num += cfg.position_3d_weight * d3 / cfg.max_distance_3d_m
                    den += cfg.position_3d_weight
                cost[i, j] = num / den if den > 0 else _INVALID
        return cost
