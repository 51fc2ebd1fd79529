"""Multi-camera people fusion: several cameras' people, one set of people with global track ids.

ROS-free. Each camera's pose node finds people on its own; the ROS layer moves every camera's
people into one ``fusion_frame`` (TF at each message's stamp) and hands them here as
:class:`CameraPeople`. :meth:`PeopleFusion.update` then

1. keeps the fresh cameras only: a frame older than ``max_age_s`` (a stalled camera) or stamped
   more than ``max_future_s`` ahead of ``now_s`` (a clock offset) is left out, with the reason in
   :attr:`FusionResult.camera_status`;
2. aligns time: every person is predicted to the newest fresh stamp with a constant velocity
   (``Person.velocity`` when known, capped at ``max_prediction_s``); the time gap also widens each
   point's sigma by ``velocity_sigma_m_s * dt`` (``unknown_velocity_sigma_m_s`` without a velocity);
3. associates the same person seen by several cameras: the cost of a pair is the median, over the
   joints valid in both, of the 3D distance normalised by ``sqrt(s1^2 + s2^2 + sigma_floor^2)``
   (box-only people: their centroids); pairs with fewer than ``min_common_joints`` common
   joints, a median distance above ``max_joint_distance_m`` or a cost above ``max_cost`` never
   match. Cameras are taken one by one; each camera's people are assigned to the people found so
   far with the Hungarian method (``scipy.optimize.linear_sum_assignment``), so two people of one
   camera never merge;
4. fuses each group joint by joint, weighted by inverse variance; measured points
   (``SOURCE_DEPTH``) are preferred: where at least one camera measured a joint, model-filled
   points (``SOURCE_MODEL``) of the others are not used; fused sigma = ``1 / sqrt(sum w)``;
5. gives global track ids with a :class:`~pose_perception.core.tracking.Tracker` run on the
   fused people's 3D centroids only (boxes and pixels of different cameras are not comparable),
   so an id survives a person walking out of one camera's view into another's; stamps less than
   ``track_min_interval_s`` after the tracker's last are given to it as that stamp (no velocity
   from a microsecond gap between two cameras' frames).

A fused :class:`FusedPerson` carries the :class:`Person` (keypoints in ``fusion_frame``; 2D
pixels and box of its *primary* camera, the one with the most measured joints) and the names of
the cameras that saw it, primary first, and each camera's own person (``sources``; ``has_face``:
a camera found this person's face). People without any 3D (no valid joint and no centroid, e.g.
a frame its pose node processed without depth) cannot be placed in the fusion frame: they are
left out (counted in :attr:`FusionResult.camera_no_3d`), never fused as a person of their own
(that would be a phantom with a new track id at every frame).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from .tracking import Tracker, TrackerConfig, torso_centroid
from .types import SOURCE_DEPTH, SOURCE_MODEL, SOURCE_NONE, Keypoints, Person

_INVALID = 1e6


@dataclass
class CameraPeople:
    """One camera's people at one stamp, 3D already in the fusion frame."""

    camera: str                 # camera name (its namespace)
    stamp_s: float              # stamp of the source colour image [s]
    people: List[Person] = field(default_factory=list)


@dataclass
class FusionConfig:
    """Parameters of :class:`PeopleFusion` (units in the names)."""

    max_age_s: float = 0.3              # a camera frame older than this (vs now) is left out
    max_future_s: float = 0.1           # ... and one stamped this far ahead of now
    max_prediction_s: float = 0.3       # constant-velocity prediction horizon cap
    velocity_sigma_m_s: float = 0.5     # sigma growth per second of prediction (known velocity)
    unknown_velocity_sigma_m_s: float = 1.5   # ... without a velocity
    sigma_floor_m: float = 0.08         # added in quadrature in the association (joint definitions
    #                                     differ between views; calibration error)
    default_sigma_m: float = 0.10       # sigma of a valid point that has none
    model_sigma_factor: float = 2.0     # model-filled points weigh as if sigma were this x larger
    min_common_joints: int = 3          # fewer common valid joints: centroids are compared
    max_joint_distance_m: float = 0.5   # median common-joint distance gate
    max_cost: float = 4.0               # median normalised distance gate
    min_confidence: float = 0.0         # joints below this confidence are not used
    # global tracking of the fused people (3D centroid only)
    track_max_age_s: float = 1.0
    track_max_distance_m: float = 1.0
    track_min_hits: int = 1
    # fused stamps closer than this to the last one the tracker saw are given to it as that same
    # stamp (positions updated, no velocity): fusing on each camera's arrival makes stamps of
    # different cameras alternate, sometimes only microseconds apart, and centimetres of noise
    # over such a gap would read as a huge velocity and break the tracks
    track_min_interval_s: float = 0.02

    def __post_init__(self) -> None:
        for name in ("max_age_s", "max_prediction_s", "sigma_floor_m", "default_sigma_m",
                     "max_joint_distance_m", "max_cost", "track_max_age_s",
                     "track_max_distance_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_future_s", "velocity_sigma_m_s", "unknown_velocity_sigma_m_s",
                     "track_min_interval_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.model_sigma_factor < 1:
            raise ValueError("model_sigma_factor must be >= 1")
        if self.min_common_joints < 1:
            raise ValueError("min_common_joints must be >= 1")


@dataclass
class FusedPerson:
    person: Person                      # fused keypoints in the fusion frame, global track_id
    cameras: List[str]                  # cameras that saw this person, primary first
    members: int = 1                    # camera observations fused
    # (camera, that camera's Person as given to update()) of every observation fused
    sources: List[Tuple[str, Person]] = field(default_factory=list)

    @property
    def has_face(self) -> bool:
        """A face was found for this person by at least one camera (``Person.face``)."""
        return any(p.face is not None for _, p in self.sources)


@dataclass
class FusionResult:
    stamp_s: float                      # the common stamp (newest fresh camera); NaN if none
    people: List[FusedPerson]
    camera_status: Dict[str, str]       # camera -> 'used' or why it was left out
    fresh_cameras: List[str]            # cameras whose frame was used
    # camera -> median distance [m] of its joints from the fused joints, over the people it
    # shared with other cameras (absent: it shared none). A camera far above the others has a
    # wrong transform or calibration (with two cameras both show half the offset).
    camera_residual_m: Dict[str, float] = field(default_factory=dict)
    # camera -> people of its frame left out because they have no 3D at all (no valid joint, no
    # centroid: e.g. a frame processed without depth); they cannot be placed in the fusion frame
    camera_no_3d: Dict[str, int] = field(default_factory=dict)


class _Obs:
    """One camera's person predicted to the common stamp, as arrays."""

    __slots__ = ("camera", "person", "xyz", "ok", "sigma", "source", "centroid", "n_depth")

    def __init__(self, camera: str, person: Person, dt: float, cfg: FusionConfig) -> None:
        self.camera, self.person = camera, person
        b = person.body
        n = len(b)
        if b.xyz is not None:
            xyz = np.asarray(b.xyz, np.float64).copy()
            ok = np.asarray(b.xyz_valid, bool) & np.isfinite(xyz).all(axis=1) & \
                (b.score >= cfg.min_confidence)
            sigma = np.asarray(b.xyz_sigma, np.float64).copy()
            sigma[~(np.isfinite(sigma) & (sigma > 0))] = cfg.default_sigma_m
            source = np.asarray(b.xyz_source, np.uint8).copy()
        else:
            xyz, ok = np.full((n, 3), np.nan), np.zeros(n, bool)
            sigma, source = np.full(n, cfg.default_sigma_m), np.zeros(n, np.uint8)
        c = person.centroid
        centroid = None if c is None or not np.isfinite(c).all() else np.asarray(c, np.float64)
        if centroid is None:
            centroid = torso_centroid(b) if b.xyz is not None else None
        v = person.velocity
        known = v is not None and np.isfinite(v).all()
        if dt != 0:
            if known:
                shift = np.asarray(v, np.float64) * dt
                xyz = xyz + shift
                if centroid is not None:
                    centroid = centroid + shift
            grow = (cfg.velocity_sigma_m_s if known else cfg.unknown_velocity_sigma_m_s) * abs(dt)
            sigma = np.hypot(sigma, grow)
        self.xyz, self.ok, self.sigma, self.source = xyz, ok, sigma, source
        self.centroid = centroid
        self.n_depth = int((ok & (source == SOURCE_DEPTH)).sum())

    @property
    def centroid_sigma(self) -> float:
        s = self.person.centroid_sigma
        if math.isfinite(s) and s > 0:
            return s
        return float(np.median(self.sigma[self.ok])) if self.ok.any() else 0.1


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median along the last axis of the entries where ``mask`` (each row has at least one)."""
    v = np.sort(np.where(mask, values, np.inf), axis=-1)
    k = mask.sum(axis=-1, keepdims=True)
    lo = np.take_along_axis(v, (k - 1) // 2, axis=-1)
    hi = np.take_along_axis(v, k // 2, axis=-1)
    return ((lo + hi) / 2)[..., 0]


def pair_costs(a: Sequence[_Obs], b: Sequence[_Obs], cfg: FusionConfig) -> np.ndarray:
    """(len(a), len(b)) association costs: the median normalised distance of the common valid
    joints (too few: of the centroids); gated pairs cost ``_INVALID``."""
    xa, xb = np.stack([o.xyz for o in a]), np.stack([o.xyz for o in b])        # (A, N, 3)
    common = np.stack([o.ok for o in a])[:, None, :] & np.stack([o.ok for o in b])[None]
    d = np.linalg.norm(xa[:, None] - xb[None], axis=-1)                         # (A, B, N)
    sa, sb = np.stack([o.sigma for o in a]), np.stack([o.sigma for o in b])
    s = np.sqrt(sa[:, None] ** 2 + sb[None] ** 2 + cfg.sigma_floor_m ** 2)
    enough = common.sum(axis=-1) >= cfg.min_common_joints
    cost = np.full(enough.shape, _INVALID)
    if enough.any():
        m = common[enough]
        dist = _masked_median(d[enough], m)
        norm = _masked_median(d[enough] / s[enough], m)
        cost[enough] = np.where(dist <= cfg.max_joint_distance_m, norm, _INVALID)
    for i, j in zip(*np.nonzero(~enough)):          # few common joints: the centroids
        oa, ob = a[i], b[j]
        if oa.centroid is None or ob.centroid is None:
            continue
        dc = float(np.linalg.norm(oa.centroid - ob.centroid))
        if dc <= cfg.max_joint_distance_m:
            cost[i, j] = dc / math.sqrt(oa.centroid_sigma ** 2 + ob.centroid_sigma ** 2
                                        + cfg.sigma_floor_m ** 2)
    cost[cost > cfg.max_cost] = _INVALID
    return cost


def associate(observations: Sequence[Sequence[_Obs]], cfg: FusionConfig) -> List[List[_Obs]]:
    """Group the observations of several cameras (one list per camera) into people."""
    groups: List[List[_Obs]] = []
    for cam_obs in observations:
        if not groups:
            groups = [[o] for o in cam_obs]
            continue
        if not cam_obs:
            continue
        members = [o for g in groups for o in g]
        pc = pair_costs(members, cam_obs, cfg)                  # (members, camera's people)
        owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        # a group's cost: the mean over its members (any gated pair gates the group)
        cost = np.stack([pc[owner == k].mean(axis=0) for k in range(len(groups))])
        cost[cost >= _INVALID] = _INVALID
        rows, cols = linear_sum_assignment(cost)
        taken = set()
        for r, c in zip(rows, cols):
            if cost[r, c] < _INVALID:
                groups[r].append(cam_obs[c])
                taken.add(c)
        groups.extend([o] for i, o in enumerate(cam_obs) if i not in taken)
    return groups


def fuse_keypoints(group: Sequence[_Obs], cfg: FusionConfig) -> Keypoints:
    """Inverse-variance fusion of a group's keypoints (measured over model-filled points)."""
    primary = group[0].person.body
    out = Keypoints(primary.layout, primary.xy.copy(),
                    np.max([o.person.body.score for o in group], axis=0))
    out.init_3d()
    ok = np.stack([o.ok for o in group])                    # (M, N)
    src = np.stack([o.source for o in group])
    depth = ok & (src == SOURCE_DEPTH)
    use = np.where(depth.any(axis=0)[None, :], depth, ok)   # measured wins where there is one
    sigma = np.stack([o.sigma for o in group])
    eff = np.where(src == SOURCE_MODEL, sigma * cfg.model_sigma_factor, sigma)
    w = np.where(use, 1.0 / eff ** 2, 0.0)
    wsum = w.sum(axis=0)
    valid = wsum > 0
    xyz = np.stack([np.nan_to_num(o.xyz) for o in group])   # (M, N, 3)
    fused = (w[..., None] * xyz).sum(axis=0) / np.where(valid, wsum, 1.0)[:, None]
    out.xyz[valid] = fused[valid]
    out.xyz_valid[:] = valid
    # the fused sigma of the points actually used (model points at their own sigma)
    w_true = np.where(use, 1.0 / sigma ** 2, 0.0).sum(axis=0)
    out.xyz_sigma[valid] = 1.0 / np.sqrt(np.where(valid, np.maximum(w_true, wsum), 1.0)[valid])
    out.xyz_source[:] = np.where(depth.any(axis=0), SOURCE_DEPTH,
                                 np.where(valid, SOURCE_MODEL, SOURCE_NONE))
    return out


def _fused_person(group: List[_Obs], cfg: FusionConfig) -> Person:
    group.sort(key=lambda o: (-o.n_depth, -int(o.ok.sum())))
    first = group[0].person
    body = fuse_keypoints(group, cfg)
    box = np.asarray(first.box, np.float64).reshape(-1).copy()
    if box.size != 4 or not np.isfinite(box).all():
        box = np.zeros(4)          # the tracker needs a finite box (it does not use it here)
    p = Person(body=body, box=box,
               score=max(o.person.score for o in group), found_by=first.found_by)
    if not body.xyz_valid.any():
        # box-only (or no 3D): inverse-variance mean of the members' centroids
        cs = [(o.centroid, o.centroid_sigma) for o in group if o.centroid is not None]
        if cs:
            w = np.array([1.0 / s ** 2 for _, s in cs])
            p.centroid = (np.stack([c for c, _ in cs]) * w[:, None]).sum(axis=0) / w.sum()
            p.centroid_sigma = float(1.0 / math.sqrt(w.sum()))
    else:
        p.centroid = torso_centroid(body)
    vs = [np.asarray(o.person.velocity, np.float64) for o in group
          if o.person.velocity is not None and np.isfinite(o.person.velocity).all()]
    if vs:
        p.velocity = np.mean(vs, axis=0)
    if any(o.person.found_by != first.found_by for o in group):
        p.found_by = min(o.person.found_by for o in group)   # landmarks win over a box
    return p


def _residuals(groups: Sequence[List[_Obs]], people: Sequence[Person]) -> Dict[str, float]:
    """camera -> median joint distance from the fused joints over the shared people."""
    per_cam: Dict[str, List[np.ndarray]] = {}
    for g, p in zip(groups, people):
        if len({o.camera for o in g}) < 2:
            continue
        for o in g:
            common = o.ok & p.body.xyz_valid
            if common.any():
                per_cam.setdefault(o.camera, []).append(
                    np.linalg.norm(o.xyz[common] - p.body.xyz[common], axis=1))
    return {c: float(np.median(np.concatenate(d))) for c, d in per_cam.items()}


class PeopleFusion:
    """See the module docstring."""

    def __init__(self, config: Optional[FusionConfig] = None) -> None:
        self.config = config or FusionConfig()
        c = self.config
        self.tracker = Tracker(TrackerConfig(
            max_age_s=c.track_max_age_s, min_hits=c.track_min_hits, iou_weight=0.0,
            keypoint_weight=0.0, position_3d_weight=1.0, max_cost=1.0,
            max_distance_3d_m=c.track_max_distance_m, max_prediction_s=c.max_prediction_s))
        self._track_stamp: Optional[float] = None     # last stamp given to the tracker

    def reset(self) -> None:
        self.tracker.reset()
        self._track_stamp = None

    def select(self, frames: Sequence[CameraPeople], now_s: float):
        """(fresh frames, camera -> status) of ``frames`` at time ``now_s``."""
        cfg = self.config
        fresh, status = [], {}
        for f in frames:
            age = now_s - f.stamp_s
            if not math.isfinite(f.stamp_s):
                status[f.camera] = "invalid stamp"
            elif age > cfg.max_age_s:
                status[f.camera] = f"stale: {age:.3f} s old (max_age_s {cfg.max_age_s})"
            elif age < -cfg.max_future_s:
                status[f.camera] = f"{-age:.3f} s in the future (clock offset?)"
            else:
                status[f.camera] = "used"
                fresh.append(f)
        return fresh, status

    def update(self, frames: Sequence[CameraPeople], now_s: float) -> FusionResult:
        """Fuse the latest frame of each camera (see the module docstring)."""
        cfg = self.config
        fresh, status = self.select(frames, float(now_s))
        if not fresh:
            return FusionResult(math.nan, [], status, [])
        stamp = max(f.stamp_s for f in fresh)
        per_cam, no_3d = [], {}
        for f in fresh:
            dt = min(stamp - f.stamp_s, cfg.max_prediction_s)
            obs = [_Obs(f.camera, p, dt, cfg) for p in f.people]
            kept = [o for o in obs if o.ok.any() or o.centroid is not None]
            if len(kept) < len(obs):
                no_3d[f.camera] = len(obs) - len(kept)
            per_cam.append(kept)
        # the camera with the most people first: fewer groups to grow
        per_cam.sort(key=lambda obs: -len(obs))
        groups = associate(per_cam, cfg)
        people = [_fused_person(g, cfg) for g in groups]
        last = self._track_stamp
        if last is None or stamp < last or stamp - last >= cfg.track_min_interval_s:
            last = self._track_stamp = stamp             # (going back: the tracker resets)
        self.tracker.update(people, last)
        vel = {t.track_id: t.centroid_velocity for t in self.tracker.tracks if t.track_id > 0}
        out = []
        for p, g in zip(people, groups):
            if p.velocity is None and vel.get(p.track_id) is not None:
                p.velocity = vel[p.track_id]
            out.append(FusedPerson(p, list(dict.fromkeys(o.camera for o in g)), len(g),
                                   [(o.camera, o.person) for o in g]))
        return FusionResult(stamp, out, status, [f.camera for f in fresh],
                            _residuals(groups, people), no_3d)
