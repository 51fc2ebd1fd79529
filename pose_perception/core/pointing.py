"""Pointing in 3D: who points with which arm, along which ray, at which surface point. ROS-free.

Per tracked person (``blazepose33`` body with 3D, optional ``hand21`` hands with 3D), an arm is
*pointing* when (all in 3D, so independent of the camera's view of the arm):

- it is extended: the elbow angle (upper arm to forearm, 180 = straight) is at least
  ``min_elbow_deg``;
- it is raised from hanging: the shoulder -> wrist line is at least ``min_raise_deg`` away from
  the torso's down axis (mid-shoulder -> mid-hip; the camera's +y when the hips are unknown),
  but, unless the hand is seen with its index finger extended, not raised overhead: at most
  ``max_raise_deg`` (an arm within 30 degrees of straight up is a raised hand, ``body_gestures``,
  not pointing);
- the wrist is away from the torso: at least ``min_reach_m`` from the mid-shoulder -> mid-hip
  segment (a hand on the hip or in front of the belly is not pointing);
- when that side's hand has 3D: its index finger is extended, its tip at least
  ``min_index_ratio`` times further from the hand's wrist than the other fingertips (median);

and it has been so for ``on_s`` (hysteresis in time per track id; once pointing, the angle
thresholds are relaxed by ``hysteresis_deg`` and the reach by ``hysteresis_m``, and the pointing
ends after ``off_s`` without, the last pointing being repeated meanwhile). With both arms
pointing, the one pointing first is reported.

The ray: the head/eye-hand line is the most reliable cue of where people point (Nickel &
Stiefelhagen, 2007, "Visual recognition of pointing gestures for human-robot interaction": better
than the forearm line), so the ray starts at the eye (the mid-eye, or with ``eye='side'`` the
pointing side's eye) and goes through the index fingertip of the hand
(``method='eye_fingertip'``); without a hand with 3D, through the wrist (``'eye_wrist'``);
without eyes (or with an eye line more than ``max_eye_arm_deg`` off the arm's shoulder -> wrist
line), from the shoulder through the wrist (``'shoulder_wrist'``).

The target: the ray marched on the depth image (:mod:`.depth_raycast`) from ``start_beyond_m``
past the fingertip (plus ``hand_length_m`` past a wrist) up to ``max_range_m``; hits within
``arm_clearance_m`` of the pointing arm and hand are skipped. Only surfaces the camera sees are
found (the ray behind a nearer surface is occluded, not a hit). ``confidence``: the arm joints'
lowest score times 1 / 0.85 / 0.7 per method. Uncertainty (1-sigma, metres):
``target_sigma = hypot(range * angle_sigma, depth_noise_a * z^2)``, ``range`` from the ray's origin,
``angle_sigma = max(hypot(sigma_origin, sigma_through) / |through - origin|, floor)`` (joint
sigmas ``xyz_sigma``, ``default_joint_sigma_m`` where unknown; the floor per method,
``floor_*_deg``, covers how far people's actual aim departs from that line).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import vec3
from .camera import CameraModel
from .depth_raycast import march_ray
from .joints import Joints, joints_of
from .pointing_arm import (ARM, HAND_WRIST, INDEX_TIP, ArmPose, arm_pose, index_extended,
                           score_at_least, segment_distance)
from .types import Hand, Keypoints
from .vec3 import Vec, angle_deg, unit

METHOD_EYE_FINGERTIP = "eye_fingertip"
METHOD_EYE_WRIST = "eye_wrist"
METHOD_SHOULDER_WRIST = "shoulder_wrist"
EYE = {"left": 2, "right": 5}                           # BlazePose-33
_EPS = 1e-6


@dataclass
class PointingConfig:
    min_elbow_deg: float = 150.0      # elbow at least this straight
    min_raise_deg: float = 30.0       # shoulder -> wrist this far from hanging
    max_raise_deg: float = 150.0      # ... and no further without a pointing finger seen
    min_reach_m: float = 0.30         # wrist this far from the torso axis
    min_index_ratio: float = 1.3      # index tip / other fingertips' distance to the wrist
    hysteresis_deg: float = 10.0      # angle thresholds relaxed by this once pointing
    hysteresis_m: float = 0.05        # ... and the reach by this
    on_s: float = 0.3                 # held this long before it is reported
    off_s: float = 0.3                # ... and reported until lost this long
    forget_after_s: float = 2.0       # tracks not updated this long are dropped
    min_joint_score: float = 0.3      # joints below this score are not used
    eye: str = "mid"                  # 'mid' (between the eyes) or 'side' (pointing side's eye)
    max_eye_arm_deg: float = 45.0     # eye ray further off the arm line: shoulder-wrist ray
    hand_max_offset_m: float = 0.12   # a hand's wrist this close to the body's wrist is its hand
    max_range_m: float = 8.0          # ray marched up to this far from its origin
    step_m: float = 0.02
    surface_tol_m: float = 0.03       # a sample this close in front of the surface is a hit
    max_behind_m: float = 0.25        # ... further behind it is occluded, not a hit
    depth_window_px: float = 2.0      # depth under a sample: median within this radius
    start_beyond_m: float = 0.10      # march from this far past the fingertip
    hand_length_m: float = 0.20       # ... plus this past a wrist
    arm_clearance_m: float = 0.08     # hits this close to the pointing arm/hand are skipped
    default_joint_sigma_m: float = 0.02
    floor_eye_fingertip_deg: float = 3.0
    floor_eye_wrist_deg: float = 5.0
    floor_shoulder_wrist_deg: float = 8.0
    depth_noise_a: float = 0.002      # depth sigma = a * z^2 (as lifting_config)

    def __post_init__(self) -> None:
        if not (0 < self.min_elbow_deg <= 180
                and 0 <= self.min_raise_deg < self.max_raise_deg <= 180
                and self.min_reach_m >= 0 and self.min_index_ratio >= 1
                and self.hysteresis_deg >= 0 and self.hysteresis_m >= 0
                and min(self.on_s, self.off_s) >= 0 and self.forget_after_s > 0
                and self.eye in ("mid", "side") and 0 < self.max_eye_arm_deg <= 180
                and 0 < self.step_m < self.max_range_m and self.surface_tol_m >= 0
                and self.max_behind_m > 0 and self.depth_window_px >= 0
                and min(self.start_beyond_m, self.hand_length_m, self.arm_clearance_m) >= 0
                and self.default_joint_sigma_m > 0 and self.depth_noise_a >= 0
                and min(self.floor_eye_fingertip_deg, self.floor_eye_wrist_deg,
                        self.floor_shoulder_wrist_deg) > 0):
            raise ValueError("invalid PointingConfig: angles in (0, 180], eye 'mid' or 'side', "
                             "0 < step_m < max_range_m, times, lengths and sigmas >= 0, "
                             "min_index_ratio >= 1")

    def floor_deg(self, method: str) -> float:
        """The angular sigma floor of a ray ``method``."""
        floors = {METHOD_EYE_FINGERTIP: self.floor_eye_fingertip_deg,
                  METHOD_EYE_WRIST: self.floor_eye_wrist_deg}
        return floors.get(method, self.floor_shoulder_wrist_deg)


@dataclass
class Pointing:
    track_id: int
    side: str                        # 'left' / 'right': the person's pointing arm
    origin: np.ndarray               # (3,) metres: the ray's start (eye or shoulder)
    direction: np.ndarray            # (3,) unit
    method: str                      # METHOD_*
    confidence: float                # [0, 1]
    start_s: float                   # when this pointing began (before on_s)
    target: Optional[np.ndarray]     # (3,) metres: the ray's first surface, None if none
    target_sigma: float              # metres, 1-sigma of target; NaN without one
    fingertip: np.ndarray            # (3,) the ray's through point (index tip, else wrist)
    angle_sigma_deg: float = math.nan   # 1-sigma of the direction


def _hand_for(hands: Sequence[Hand], side: str, wrist: Vec,
              cfg: PointingConfig) -> Optional[Joints]:
    """The joints of that side's hand with 3D whose wrist lies near the body's wrist (the
    nearest one)."""
    best, best_d = None, cfg.hand_max_offset_m
    for h in hands or ():
        if h.handedness != side or h.keypoints.xyz is None:
            continue
        j = joints_of(h.keypoints)
        hw = j.get(HAND_WRIST) if j is not None else None
        d = vec3.dist(hw, wrist) if hw is not None else math.inf
        if d <= best_d:
            best, best_d = j, d
    return best


def pointing_ray(body: Joints, arm: ArmPose, side: str, hand: Optional[Joints],
                 cfg: PointingConfig) -> Tuple[Vec, Vec, str, float]:
    """``(origin, through, method, angle_sigma_rad)`` of the ray (see the module docstring):
    ``body`` and ``hand`` are the joints of the person and of their pointing hand."""
    s_idx, _, w_idx = ARM[side]
    shoulder, wrist = arm.joints[0], arm.joints[2]
    dflt = cfg.default_joint_sigma_m
    tip = hand.get(INDEX_TIP) if hand is not None else None
    through, s_through = ((tip, hand.sigma_of(INDEX_TIP, dflt)) if tip is not None
                          else (wrist, body.sigma_of(w_idx, dflt)))
    eye_ids = (EYE[side],) if cfg.eye == "side" else tuple(EYE.values())
    min_score = score_at_least(cfg.min_joint_score)
    eyes = [(p, body.sigma_of(i, dflt)) for i in eye_ids
            if (p := body.get(i, min_score)) is not None]
    origin = None
    if eyes:
        origin = vec3.mean([p for p, _ in eyes])
        s_origin = sum(s for _, s in eyes) / len(eyes)
        method = METHOD_EYE_FINGERTIP if tip is not None else METHOD_EYE_WRIST
        if not angle_deg(vec3.sub(through, origin), vec3.sub(wrist, shoulder)) \
                <= cfg.max_eye_arm_deg:
            origin = None
    if origin is None:
        origin, s_origin, through = shoulder, body.sigma_of(s_idx, dflt), wrist
        s_through, method = body.sigma_of(w_idx, dflt), METHOD_SHOULDER_WRIST
    length = max(vec3.dist(through, origin), 1e-6)
    angle = max(math.hypot(s_origin, s_through) / length, math.radians(cfg.floor_deg(method)))
    return origin, through, method, angle


def intersect_depth(origin, direction, depth_m: Optional[np.ndarray],
                    camera: Optional[CameraModel], cfg: Optional[PointingConfig] = None, *,
                    start_m: float = 0.0, arm: Optional[np.ndarray] = None,
                    angle_sigma_rad: Optional[float] = None
                    ) -> Optional[Tuple[np.ndarray, float]]:
    """``(target (3,), target_sigma)`` where the ray first meets the depth image's surface at
    least ``start_m`` from ``origin``, skipping hits within ``cfg.arm_clearance_m`` of the
    polyline ``arm`` (K, 3); None when there is none within ``cfg.max_range_m``. The angular
    sigma defaults to the eye-fingertip floor."""
    cfg = cfg or PointingConfig()
    pts = None if arm is None else np.asarray(arm, np.float64).reshape(-1, 3).tolist()

    def clear_of_arm(p: np.ndarray) -> bool:
        q = vec3.vec(p)
        return pts is None or len(pts) < 2 or min(
            segment_distance(q, a, b) for a, b in zip(pts[:-1], pts[1:])) > cfg.arm_clearance_m

    hit = march_ray(origin, direction, depth_m, camera, start_m, cfg.max_range_m, cfg.step_m,
                    cfg.surface_tol_m, cfg.max_behind_m, cfg.depth_window_px, clear_of_arm)
    if hit is None:
        return None
    ang = angle_sigma_rad if angle_sigma_rad is not None else math.radians(
        cfg.floor_eye_fingertip_deg)
    z = float(hit.point[2])
    return hit.point, math.hypot(hit.range_m * ang, cfg.depth_noise_a * z * z)


@dataclass
class _Side:
    since: float = math.nan          # start of the current candidate / pointing
    active: bool = False
    lost_since: float = math.nan
    last: Optional[Pointing] = None


@dataclass
class _Track:
    sides: Dict[str, _Side] = field(default_factory=lambda: {s: _Side() for s in ARM})
    last_seen_s: float = math.nan


class PointingTracker:
    """Pointing per track id over time (see the module docstring)."""

    def __init__(self, cfg: Optional[PointingConfig] = None) -> None:
        self.cfg = cfg or PointingConfig()
        self._tracks: Dict[int, _Track] = {}

    def reset(self) -> None:
        self._tracks = {}

    def expire(self, stamp_s: float) -> None:
        """Forget tracks not updated for ``forget_after_s`` before ``stamp_s``."""
        keep = self.cfg.forget_after_s
        self._tracks = {k: t for k, t in self._tracks.items()
                        if float(stamp_s) - t.last_seen_s <= keep}

    def _candidate(self, body: Optional[Joints], side: str, hands: Sequence[Hand],
                   relax: bool) -> Optional[Tuple[ArmPose, Optional[Joints]]]:
        c = self.cfg
        arm = arm_pose(body, side, c.min_joint_score)
        da, dm = (c.hysteresis_deg, c.hysteresis_m) if relax else (0.0, 0.0)
        if arm is None or not (arm.elbow_deg >= c.min_elbow_deg - da
                               and arm.raise_deg >= c.min_raise_deg - da
                               and arm.reach_m >= c.min_reach_m - dm):
            return None
        hand = _hand_for(hands, side, arm.joints[2], c)
        ratio = index_extended(hand) if hand is not None else None
        if hand is not None and ratio is not None and ratio < c.min_index_ratio:
            return None
        if ratio is None and arm.raise_deg > c.max_raise_deg + da:
            return None             # overhead without a pointing finger seen: a raised hand
        return arm, hand if ratio is not None else None

    def update(self, track_id: int, body: Keypoints, hands: Optional[List[Hand]],
               stamp_s: float, depth_m: Optional[np.ndarray] = None,
               camera: Optional[CameraModel] = None,
               joints: Optional[Joints] = None) -> Optional[Pointing]:
        """This person's pointing at ``stamp_s`` (seconds), or None. ``depth_m`` (metres,
        registered to ``camera``'s image) gives the target; untracked people (id <= 0) and
        bodies without 3D give None. ``joints``: ``body``'s 3D when already read
        (``joints.joints_of``)."""
        t = float(stamp_s)
        self.expire(t)
        if track_id <= 0 or body is None or body.xyz is None:
            return None
        if joints is None:
            joints = joints_of(body)
        track = self._tracks.setdefault(int(track_id), _Track())
        track.last_seen_s = t
        for side, st in track.sides.items():
            cand = self._candidate(joints, side, hands or [], st.active)
            if cand is not None:
                st.since, st.lost_since = (t if math.isnan(st.since) else st.since), math.nan
                if not st.active and t - st.since >= self.cfg.on_s - _EPS:
                    st.active = True
                if st.active:
                    st.last = self._pointing(track_id, joints, side, *cand, st.since, depth_m,
                                             camera) or st.last
            elif st.active:
                st.lost_since = t if math.isnan(st.lost_since) else st.lost_since
                if t - st.lost_since >= self.cfg.off_s - _EPS:
                    track.sides[side] = _Side()
            else:
                st.since = math.nan
        active = [st for st in track.sides.values() if st.active and st.last is not None]
        return min(active, key=lambda st: st.since).last if active else None

    def _pointing(self, track_id: int, body: Joints, side: str, arm: ArmPose,
                  hand: Optional[Joints], start_s: float, depth_m,
                  camera) -> Optional[Pointing]:
        c = self.cfg
        origin, through, method, ang = pointing_ray(body, arm, side, hand, c)
        ray = vec3.sub(through, origin)
        direction = unit(ray)
        if direction is None:                  # through == origin: no ray
            return None
        beyond = c.start_beyond_m + (0.0 if method == METHOD_EYE_FINGERTIP else c.hand_length_m)
        start = vec3.dot(ray, direction) + beyond
        arm_line = [*arm.joints, through, vec3.add(through, vec3.scale(direction, beyond))]
        hit = intersect_depth(origin, direction, depth_m, camera, c, start_m=start,
                              arm=arm_line, angle_sigma_rad=ang)
        weight = {METHOD_EYE_FINGERTIP: 1.0, METHOD_EYE_WRIST: 0.85}.get(method, 0.7)
        return Pointing(int(track_id), side, np.array(origin), np.array(direction), method,
                        min(max(arm.score * weight, 0.0), 1.0), start_s,
                        None if hit is None else hit[0],
                        math.nan if hit is None else float(hit[1]), np.array(through),
                        math.degrees(ang))
