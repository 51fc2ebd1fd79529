"""Posture (standing, sitting, crouching, lying) and falls per tracked person, from the 3D body
skeleton in a gravity-aligned frame. ROS-free.

``up`` is a unit vector in the frame of the points (the ROS layer takes the robot base frame's
z axis from TF). Without TF the camera is assumed level: up = (0, -1, 0) in the camera optical
frame; a tilted or rolled camera then skews every angle below by its tilt. The 3D is the
depth-lifted keypoints when the four torso joints are valid, else the body model's own metric
3D (``Person.world``), whose confidence is then scaled by ``model_confidence_scale`` (0.8);
joints scored below ``min_joint_score`` (0.2) are left out (see ``core.body_frame``).

Measures (BlazePose joints; "mid" = the mean of the left and right joint; angles in degrees):
- trunk: angle between (shoulder mid - hip mid) and up (0 upright, 90 horizontal);
- thigh: angle between (knee - hip) and down, mean over the legs seen (0 vertical, 90 level);
- knee: angle hip-knee-ankle, mean over the legs seen (180 straight);
- hip: angle between (shoulder mid - hip mid) and (knee mid - hip mid) (180 straight, ~90 on a
  chair): flexed hips tell a reclined sitter from a lying person;
- hip ratio: height of the hip mid above the lowest foot point (ankles, heels, toes) along up,
  over the leg length (mean of |hip-knee| + |knee-ankle|): ~1 standing, ~0.5 on a chair;
- feet forward: horizontal distance of the ankle in front of the torso centre (the mean of
  shoulders and hips, near the centre of mass), along the thigh's horizontal direction, over
  the thigh length (0 when the thigh is within 17 degrees of vertical). Without a seat the
  weight must be above the feet: ~0 squatting or kneeling, ~1 on a chair (feet below the
  knees, the weight on the seat);
- vertical ratio: extent of the seen nose, shoulders, hips, knees and ankles along up over
  their largest horizontal distance (~4 standing, < 0.3 lying).

Scores in [0, 1] from ramps r(x, a, b) (0 at a, 1 at b, linear between), a measure that cannot
be computed leaves its factor out:
- LYING = r(vertical ratio, 0.8, 0.5) * max(r(trunk, 75, 85), r(trunk, 55, 75) * r(hip, 100, 130)):
  a flat trunk is lying whatever the legs do (curled up on the floor); a trunk raised 5 to 35
  degrees above horizontal is lying only with open hips (a pillow, a slope), with flexed hips
  it is reclined sitting (on the floor leaning back on the elbows, a deck chair);
- STANDING = (1 - LYING) * r(thigh, 45, 25) * r(knee, 120, 150) * r(hip ratio, 0.6, 0.8);
- SITTING = (1 - LYING) * r(thigh, 35, 55) * r(trunk, 85, 75) * r(feet forward, 0.3, 0.6)
  (the trunk may lean far: bending forward on a chair, reclining);
- CROUCHING (squatting, kneeling) = (1 - LYING) * r(knee, 130, 100) * r(feet forward, 0.6, 0.3),
  and 0 when the knee angle is unknown (without ankles a squat looks like sitting).
The best score wins when it reaches ``min_score`` (0.5), else UNKNOWN; without knees only LYING
can be told. Confidence = best - 0.5 x runner-up, times ``partial_scale`` (0.7) when no leg has
its ankle (the knee angle unknown).

Tracking (``PostureTracker``, per track id, stamps in seconds): the first classification, and
the first known one after UNKNOWN, is taken at once; afterwards a different label replaces the
current one once it has been the raw label for ``switch_s`` (0.5 s; a raw UNKNOWN only after
``unknown_after_s``, 1.5 s). ``since_s`` is the first frame of the winning raw label. The
state's confidence is an exponential average (time constant ``confidence_tau_s``, 0.3 s) of the
raw confidence, frames with another label counting as 0. Tracks not updated for
``forget_after_s`` (5 s) are dropped, or explicitly with ``forget(active_ids)``.

Falls (``core.falls``): the torso centre (mean of shoulders and hips; depth 3D only, the
model's 3D has no absolute height) is followed along up. A drop is seen when, within the last
``fall_window_s`` (1 s), the torso fell at least ``fall_drop_m`` (0.6 m) below its highest
point there and its downward speed, measured over at least ``speed_span_s`` (0.2 s), peaked at
``fall_speed_mps`` (1 m/s) or more. Sitting down quickly drops the torso about 0.45 m: no fall.
If the tracked posture becomes LYING within ``fall_confirm_s`` (3 s) of the drop, one
``FallEvent`` is returned (by the update that saw LYING), stamped with the time the drop was
first seen and carrying the largest drop and speed seen; the next fall is reported only after
the person has left LYING. Heights are along up in the points' frame: in the camera frame a
camera moving up or down (a torso lift, a head tilt without TF) looks like the person moving;
use a frame fixed to the floor (the robot's base or odom) when the camera moves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from .body_frame import (FEET, L_ANKLE, L_HIP, L_KNEE, L_SHOULDER, NOSE, R_ANKLE, R_HIP, R_KNEE,
                         R_SHOULDER, TORSO, Skeleton, ramp, skeleton_from_arrays,
                         skeleton_from_keypoints)
from .falls import FallDetector, FallEvent
from .joints import Joints
from .types import Keypoints
from .vec3 import add, angle_deg, dist, dot, neg, norm, scale, sub, unit

_EPS = 1e-6          # stamps are floats
_EXTENT = (NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE)


class Posture(IntEnum):
    UNKNOWN = 0
    STANDING = 1
    SITTING = 2
    CROUCHING = 3
    LYING = 4


@dataclass
class PostureConfig:
    min_score: float = 0.5            # best class score below this: UNKNOWN
    partial_scale: float = 0.7        # confidence factor without ankles
    model_confidence_scale: float = 0.8   # confidence factor on the model's 3D
    min_joint_score: float = 0.2      # keypoints scored below this are left out
    switch_s: float = 0.5             # a new label must hold this long
    unknown_after_s: float = 1.5      # ... UNKNOWN this long
    confidence_tau_s: float = 0.3
    forget_after_s: float = 5.0
    fall_drop_m: float = 0.6
    fall_speed_mps: float = 1.0
    fall_window_s: float = 1.0
    speed_span_s: float = 0.2
    fall_confirm_s: float = 3.0

    def __post_init__(self) -> None:
        if not (0 < self.min_score <= 1 and 0 < self.partial_scale <= 1
                and 0 < self.model_confidence_scale <= 1 and 0 <= self.min_joint_score < 1):
            raise ValueError("need 0 < min_score, partial_scale, model_confidence_scale <= 1 "
                             "and 0 <= min_joint_score < 1")
        if min(self.switch_s, self.unknown_after_s, self.confidence_tau_s) < 0 or \
                min(self.forget_after_s, self.fall_drop_m, self.fall_speed_mps,
                    self.fall_window_s, self.speed_span_s, self.fall_confirm_s) <= 0 or \
                self.speed_span_s >= self.fall_window_s:
            raise ValueError("need times >= 0, positive fall thresholds and "
                             "speed_span_s < fall_window_s")


@dataclass
class PostureFeatures:
    """The measures of the module docstring (NaN where they cannot be computed)."""

    trunk_deg: float = math.nan
    thigh_deg: float = math.nan
    knee_deg: float = math.nan
    hip_deg: float = math.nan
    hip_ratio: float = math.nan
    feet_forward: float = math.nan
    vertical_ratio: float = math.nan


def _nanmean(values) -> float:
    """Mean of the finite values (summed in order), NaN without any."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return math.nan
    total = v[0]
    for x in v[1:]:
        total += x
    return total / len(v)


def posture_features(sk: Skeleton) -> PostureFeatures:
    """The measures of the module docstring for one skeleton."""
    f = PostureFeatures()
    hip, sho = sk.mean((L_HIP, R_HIP), True), sk.mean((L_SHOULDER, R_SHOULDER), True)
    if hip is None or sho is None:
        return f
    f.trunk_deg = angle_deg(sub(sho, hip), sk.up)
    centre = scale(add(sho, hip), 0.5)
    down = neg(sk.up)
    thigh, knee, fwd, legs = [], [], [], []
    for h, k, a in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        ph, pk, pa = sk.point(h), sk.point(k), sk.point(a)
        if ph is None or pk is None:
            continue
        thigh.append(angle_deg(sub(pk, ph), down))
        if pa is None:
            continue
        knee.append(angle_deg(sub(ph, pk), sub(pa, pk)))
        t_len = dist(pk, ph)
        legs.append(t_len + dist(pa, pk))
        th = sk.horizontal(sub(pk, ph))
        d = unit(th) if norm(th) >= 0.3 * t_len else None
        fwd.append(0.0 if d is None else dot(sk.horizontal(sub(pa, centre)), d) / max(t_len, _EPS))
    f.thigh_deg, f.knee_deg, f.feet_forward = _nanmean(thigh), _nanmean(knee), _nanmean(fwd)
    knees = sk.mean((L_KNEE, R_KNEE))
    if knees is not None:
        f.hip_deg = angle_deg(sub(sho, hip), sub(knees, hip))
    feet = [sk.height(p) for p in sk.valid(FEET)]
    if legs and feet:
        f.hip_ratio = (sk.height(hip) - min(feet)) / max(_nanmean(legs), _EPS)
    f.vertical_ratio = _vertical_ratio(sk)
    return f


def _vertical_ratio(sk: Skeleton) -> float:
    """Extent of the seen ``_EXTENT`` joints along up over their largest horizontal distance."""
    pts = sk.valid(_EXTENT)
    heights = [sk.height(p) for p in pts]
    flat = [sub(p, scale(sk.up, h)) for p, h in zip(pts, heights)]
    widest = 0.0                        # the largest squared distance (inlined: 36 pairs)
    for i, (ax, ay, az) in enumerate(flat):
        for bx, by, bz in flat[i + 1:]:
            dx, dy, dz = ax - bx, ay - by, az - bz
            d2 = dx * dx + dy * dy + dz * dz
            if d2 > widest:
                widest = d2
    return (max(heights) - min(heights)) / max(math.sqrt(widest), 0.05)


def _score(*factors: float) -> float:
    """Product of the factors that are known (NaN ones left out)."""
    out = 1.0
    for x in factors:
        if math.isfinite(x):
            out *= x
    return out


def posture_scores(f: PostureFeatures) -> Dict[Posture, float]:
    """Per-class scores of the module docstring (empty without a trunk)."""
    if not math.isfinite(f.trunk_deg):
        return {}
    hips_open = ramp(f.hip_deg, 100, 130) if math.isfinite(f.hip_deg) else 1.0
    lying = _score(ramp(f.vertical_ratio, 0.8, 0.5),
                   max(ramp(f.trunk_deg, 75, 85), ramp(f.trunk_deg, 55, 75) * hips_open))
    scores = {Posture.LYING: lying}
    if math.isfinite(f.thigh_deg):
        up = 1.0 - lying
        scores[Posture.STANDING] = up * _score(ramp(f.thigh_deg, 45, 25),
                                               ramp(f.knee_deg, 120, 150),
                                               ramp(f.hip_ratio, 0.6, 0.8))
        scores[Posture.SITTING] = up * _score(ramp(f.thigh_deg, 35, 55),
                                              ramp(f.trunk_deg, 85, 75),
                                              ramp(f.feet_forward, 0.3, 0.6))
        scores[Posture.CROUCHING] = up * (_score(ramp(f.knee_deg, 130, 100),
                                                 ramp(f.feet_forward, 0.6, 0.3))
                                          if math.isfinite(f.knee_deg) else 0.0)
    return scores


def _decide(f: PostureFeatures, cfg: PostureConfig) -> Tuple[Posture, float]:
    scores = sorted(posture_scores(f).items(), key=lambda kv: -kv[1])
    if not scores or scores[0][1] < cfg.min_score:
        return Posture.UNKNOWN, 0.0
    second = scores[1][1] if len(scores) > 1 else 0.0
    conf = max(0.0, scores[0][1] - 0.5 * second)
    if not math.isfinite(f.knee_deg):
        conf *= cfg.partial_scale
    return scores[0][0], float(conf)


def classify_posture(xyz, valid, up, cfg: Optional[PostureConfig] = None
                     ) -> Tuple[Posture, float]:
    """Posture and confidence of one BlazePose-33 skeleton: ``xyz`` (33, 3) metres, ``valid``
    (33,) bool, ``up`` a vector in the same frame (normalised here)."""
    return _decide(posture_features(skeleton_from_arrays(xyz, valid, up)),
                   cfg or PostureConfig())


@dataclass
class PostureState:
    posture: Posture
    confidence: float
    since_s: float            # when this posture started (first frame of its raw label)


@dataclass
class _Track:
    state: PostureState
    pending: Posture = Posture.UNKNOWN
    pending_since: float = math.nan
    last_s: float = math.nan
    falls: Optional[FallDetector] = None


class PostureTracker:
    """Smoothed posture and fall events per track id (see the module docstring)."""

    def __init__(self, cfg: Optional[PostureConfig] = None) -> None:
        self.cfg = cfg or PostureConfig()
        self._tracks: Dict[int, _Track] = {}

    def reset(self) -> None:
        self._tracks = {}

    def forget(self, active_ids: Iterable[int]) -> None:
        """Drop every track whose id is not in ``active_ids``."""
        keep = set(int(i) for i in active_ids)
        self._tracks = {k: v for k, v in self._tracks.items() if k in keep}

    def update(self, track_id: int, keypoints: Keypoints, stamp_s: float, up,
               world: Optional[np.ndarray] = None, world_up=None,
               joints: Optional[Joints] = None) -> Tuple[PostureState, Optional[FallEvent]]:
        """One person's frame: ``keypoints`` (blazepose33, 3D in the frame of ``up``),
        optionally the model's ``world`` (33, 3) with ``world_up`` (up in the camera's axes;
        default ``up``) for when the lifted 3D lacks the torso; ``joints``: the keypoints'
        3D when already read (``joints.joints_of``)."""
        cfg, t = self.cfg, float(stamp_s)
        self._tracks = {k: v for k, v in self._tracks.items()
                        if t - v.last_s <= cfg.forget_after_s + _EPS}
        sk = skeleton_from_keypoints(keypoints, up, world, world_up, cfg.min_joint_score, joints)
        raw, conf = (Posture.UNKNOWN, 0.0) if sk is None else _decide(posture_features(sk), cfg)
        if sk is not None and sk.from_model:
            conf *= cfg.model_confidence_scale
        tr = self._tracks.get(int(track_id))
        if tr is None:
            tr = self._tracks[int(track_id)] = _Track(PostureState(raw, conf, t))
            tr.falls = FallDetector(int(track_id), cfg.fall_drop_m, cfg.fall_speed_mps,
                                    cfg.fall_window_s, cfg.speed_span_s, cfg.fall_confirm_s)
        else:
            self._smooth(tr, raw, conf, t)
        tr.last_s = t
        event = None
        if sk is not None and not sk.from_model:
            event = tr.falls.update(sk.height(sk.mean(TORSO, True)), t,
                                    tr.state.posture == Posture.LYING)
        else:
            tr.falls.clear_heights()
        return PostureState(tr.state.posture, tr.state.confidence, tr.state.since_s), event

    def _smooth(self, tr: _Track, raw: Posture, conf: float, t: float) -> None:
        cfg, st = self.cfg, tr.state
        alpha = 1.0 - math.exp(-max(t - tr.last_s, 0.0) / max(cfg.confidence_tau_s, _EPS))
        if raw == st.posture:
            tr.pending, tr.pending_since = raw, math.nan
        else:
            if raw != tr.pending or math.isnan(tr.pending_since):
                tr.pending, tr.pending_since = raw, t
            hold = (cfg.unknown_after_s if raw == Posture.UNKNOWN
                    else 0.0 if st.posture == Posture.UNKNOWN else cfg.switch_s)
            if t - tr.pending_since >= hold - _EPS:
                tr.state = PostureState(raw, conf, tr.pending_since)
                tr.pending_since = math.nan
                return
        st.confidence += alpha * ((conf if raw == st.posture else 0.0) - st.confidence)
