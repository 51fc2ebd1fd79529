"""2D keypoints + depth image -> 3D joint centres with uncertainty (ROS-free).

How one keypoint set is lifted (``Lifter.lift_keypoints``):

1. **Rays.** Each keypoint (pixels of the published, distorted colour image) is undistorted with
   the colour camera model into a ray. Its depth pixel is the same pixel when the depth image is
   registered on the colour grid, or the ray re-projected with the depth image's own model
   (registered depth of another resolution; unregistered depth is first reprojected with
   :class:`pose_perception.core.depth.DepthRegistration`).
2. **Person depth.** Depth samples are pooled from windows around the *anchor* joints (torso:
   shoulders and hips; central points for hands and faces). They are split into depth clusters
   (a gap wider than ``max(gap_min_m, gap_noise_k * a z^2)`` separates two surfaces); the
   person's reference surface depth ``z_ref`` is the median of the *nearest* cluster holding at
   least ``anchor_min_support`` of the samples. Depth more than ``band_back_m`` behind or
   ``band_front_m`` in front of it is not this person. With the model's own metric 3D
   (``Person.world``) each joint's band narrows to ``model_band_m`` around the depth the model
   predicts for it relative to the torso.
3. **Per-joint depth.** A disc of samples is read around each keypoint; its radius is
   ``sample_fraction`` of the joint's body radius, in pixels at ``z_ref`` (the window stays on
   the limb at any distance). The samples are clustered the same way and the *nearest* cluster
   with enough support (``min_samples``, ``min_support``) inside the band is the joint's surface
   (its median). A limb in front of a wall keeps the limb's depth; a keypoint whose window sees
   only background (or nothing) is invalid: nothing is guessed.
4. **Surface -> joint centre.** Depth measures the skin, joints are inside the body: the point is
   pushed along its viewing ray by the joint's body radius (``BODY_RADIUS_M``, times
   ``surface_offset_scale``) times the median depth of a cylinder's surface under the window.
5. **Uncertainty** (1-sigma, metres): ``sqrt(spread^2 + (a z^2)^2 + (0.3 offset)^2 + lateral^2)``
   with ``spread`` = 1.4826 MAD of the accepted samples, ``a z^2`` the sensor's depth noise
   (``depth_noise_a``), 30 % uncertainty on the surface offset and the lateral error of
   ``keypoint_sigma_px`` pixels at that depth.
6. **Occlusion by the body** (layouts with a :class:`SkeletonSpec`: ``blazepose33``, ``coco17``;
   others can be registered in ``LiftingConfig.skeletons``). A joint whose ray (widened by its
   window) meets another body part's capsule no nearer than the measured surface may be hidden
   by it (a hand behind the back, a heel behind the foot); so may any joint with a score below
   ``min_depth_score``. Such a *suspect* takes the surface behind the occluder when that
   dominates its window; else it keeps its depth if its bone to a trusted neighbour has the
   expected length (mirror bone as measured, else the model's bone scaled, else a stature
   ratio; a 3D bone may look longer by noise but never shorter); otherwise it moves along its
   ray to the nearest point at that bone length behind the occluder (``SOURCE_MODEL``, sigma
   from the bone's uncertainty). Low-score suspects that cannot be checked become invalid.
   Finally a limb joint whose bone is grossly off (``gross_bone_*``: measured on a wall close
   behind the person, say) is made invalid.
7. **Model fill** (``Person.world``: BlazePose's metric hip-centred 3D, in the image's
   orientation): a rigid fit (weighted Kabsch with outlier rejection; translation only with
   fewer than 3 joints) maps the model onto the depth-measured joints; joints still without
   depth (off the image, on background, hidden, face points of a person facing away) take the
   model's depth on their own viewing ray and are marked ``SOURCE_MODEL``; with a well-supported
   fit, depth joints farther than ``model_outlier_m`` from it are replaced the same way.

Body radii (``BODY_RADIUS_M``, metres, adult anthropometry; the depth of the joint centre behind
the skin seen from the front): face points, eyes, ears, mouth 0 (surface points); shoulders 0.06
(glenohumeral centre about half the 12 cm shoulder depth); elbows 0.04; wrists 0.03; finger points
0.012; hips 0.09 (hip joint centre behind the groin/thigh front); knees 0.05; ankles 0.035;
heels 0.02; toes 0.015. Hands (``hand21``): wrist 0.02, knuckles 0.012, fingers 0.008.

Never raises on data: NaN/inf/negative/zero depth, keypoints outside the image, all-invalid
depth only make points invalid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from .camera import CameraModel
from .head_pose import estimate_head_pose
from .layouts import BLAZEPOSE33_TO_COCO17
from .types import (SOURCE_DEPTH, SOURCE_MODEL, Face, FrameResult, Hand, Keypoints, Person)

# ---------------------------------------------------------------------------- body model tables
_BP = np.zeros(33)
_BP[11:13] = 0.06      # shoulders
_BP[13:15] = 0.04      # elbows
_BP[15:17] = 0.03      # wrists
_BP[17:23] = 0.012     # pinky, index, thumb
_BP[23:25] = 0.09      # hips
_BP[25:27] = 0.05      # knees
_BP[27:29] = 0.035     # ankles
_BP[29:31] = 0.02      # heels
_BP[31:33] = 0.015     # foot index (toes)
_HAND = np.full(21, 0.008)
_HAND[0] = 0.02                    # wrist
_HAND[[1, 5, 9, 13, 17]] = 0.012   # thumb CMC and knuckles

BODY_RADIUS_M: Dict[str, np.ndarray] = {
    "blazepose33": _BP,
    "coco17": _BP[list(BLAZEPOSE33_TO_COCO17)],
    "hand21": _HAND,
    "face468": np.zeros(468),
    "ibug68": np.zeros(68),
}
# joints pooled for the person-level depth (None = all)
ANCHOR_JOINTS: Dict[str, Optional[Tuple[int, ...]]] = {
    "blazepose33": (11, 12, 23, 24),
    "coco17": (5, 6, 11, 12),
    "hand21": (0, 1, 5, 9, 13, 17),
    "face468": (1, 4, 5, 6, 9, 151, 168, 195, 197, 50, 280, 101, 330, 36, 266),
    "ibug68": tuple(range(27, 48)),
}


@dataclass(frozen=True)
class SkeletonSpec:
    """Bones of a layout for occlusion reasoning.

    ``bones``: (a, b, length / body height, index of the mirror bone or -1, radius m); each bone
    is also a body part that can hide joints behind it. ``parts``: extra occluding parts
    ((joints averaged for end a), (... end b), radius m), e.g. the trunk's centre line or the
    head (a sphere when both ends are the same). ``derived``: joints defined as the mean of
    others (e.g. a pelvis defined as the hip midpoint), recomputed from them after lifting."""

    bones: Tuple[Tuple[int, int, float, int, float], ...]
    parts: Tuple[Tuple[Tuple[int, ...], Tuple[int, ...], float], ...] = ()
    derived: Tuple[Tuple[int, Tuple[int, ...]], ...] = ()   # (joint, joints it is the mean of)
    face: Tuple[int, ...] = ()           # face surface points (nose, eyes, mouth)
    ears: Tuple[int, ...] = ()           # (left, right): the head's centre line


def _limb_bones(sh_l, sh_r, hip_l, hip_r, el_l, el_r, wr_l, wr_r, kn_l, kn_r, an_l, an_r):
    # length ratios: joint-centre segment lengths / stature (Winter, Drillis & Contini)
    return (
        (sh_l, sh_r, 0.20, -1, 0.06), (hip_l, hip_r, 0.13, -1, 0.09),
        (sh_l, hip_l, 0.29, 3, 0.08), (sh_r, hip_r, 0.29, 2, 0.08),
        (sh_l, el_l, 0.17, 5, 0.045), (sh_r, el_r, 0.17, 4, 0.045),
        (el_l, wr_l, 0.15, 7, 0.035), (el_r, wr_r, 0.15, 6, 0.035),
        (hip_l, kn_l, 0.245, 9, 0.07), (hip_r, kn_r, 0.245, 8, 0.07),
        (kn_l, an_l, 0.25, 11, 0.045), (kn_r, an_r, 0.25, 10, 0.045),
    )


SKELETONS: Dict[str, SkeletonSpec] = {
    "blazepose33": SkeletonSpec(
        _limb_bones(11, 12, 23, 24, 13, 14, 15, 16, 25, 26, 27, 28) + (
            # hand: wrist to the pinky and index knuckles and the thumb's second joint; foot:
            # ankle to heel and to the toe tip (foot length ~0.15 stature)
            (15, 17, 0.047, 13, 0.02), (16, 18, 0.047, 12, 0.02),
            (15, 19, 0.055, 15, 0.02), (16, 20, 0.055, 14, 0.02),
            (15, 21, 0.038, 17, 0.015), (16, 22, 0.038, 16, 0.015),
            (27, 29, 0.04, 19, 0.03), (28, 30, 0.04, 18, 0.03),
            (27, 31, 0.12, 21, 0.03), (28, 32, 0.12, 20, 0.03)),
        parts=(((11, 12), (23, 24), 0.11), ((7, 8), (7, 8), 0.09)),
        face=(0, 1, 2, 3, 4, 5, 6, 9, 10), ears=(7, 8)),
    "coco17": SkeletonSpec(
        _limb_bones(5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
        parts=(((5, 6), (11, 12), 0.11), ((3, 4), (3, 4), 0.09)),
        face=(0, 1, 2), ears=(3, 4)),
}

# torso joints whose 3D mean is the person's centroid, as (shoulder pair, hip pair)
_TORSO_PAIRS = {"blazepose33": ((11, 12), (23, 24)), "coco17": ((5, 6), (11, 12))}
# typical sizes used to guess pixels-per-metre before any depth is known
_TYPICAL_EXTENT_M = {"blazepose33": 1.7, "coco17": 1.7, "hand21": 0.19, "face468": 0.16,
                     "ibug68": 0.16}
_TYPICAL_TORSO_M = 0.5


def _disc_offsets(n: int) -> np.ndarray:
    """(G, 2) sample offsets on an n x n grid inside the unit disc (centre included)."""
    g = np.linspace(-1.0, 1.0, n)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    return pts[np.hypot(pts[:, 0], pts[:, 1]) <= 1.0 + 1e-9]


def _surface_factor(fraction: float, offsets: np.ndarray) -> float:
    """How far (in radii) the median surface under a window of ``fraction`` of a cylinder's
    radius lies in front of its axis: the median of sqrt(1 - d^2) over the window's samples, d
    being a sample's distance across the limb (window orientations averaged)."""
    th = np.linspace(0, np.pi, 12, endpoint=False)
    d = fraction * (offsets[:, 0:1] * np.cos(th) + offsets[:, 1:2] * np.sin(th))
    return float(np.median(np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0))))


@dataclass
class LiftingConfig:
    """Parameters of :class:`Lifter` (defaults from sensor physics and anthropometry)."""

    sample_grid: int = 7                 # samples on an n x n grid inside each window disc
    sample_fraction: float = 0.8         # window radius / joint body radius
    min_window_m: float = 0.012          # window radius floor (metres at the person)
    min_window_px: float = 1.0
    max_window_px: float = 40.0
    anchor_window_m: float = 0.05        # window radius around anchor joints
    anchor_min_support: float = 0.2      # share of pooled anchor samples the person cluster needs
    min_samples: int = 3                 # per joint window
    min_support: float = 0.15            # share of a joint window's valid samples
    gap_min_m: float = 0.05              # depth gap that always separates two surfaces
    gap_noise_k: float = 3.0             # ... or this many sensor sigmas
    depth_noise_a: float = 0.002         # sensor depth sigma = a * z^2 (m); RealSense/Kinect-like
    keypoint_sigma_px: float = 3.0       # 2D keypoint error used for the lateral uncertainty
    band_front_m: float = 1.0            # person band around the torso surface depth
    band_back_m: float = 1.0
    model_band_m: float = 0.35           # per-joint band around the model-predicted depth
    min_depth_score: float = 0.5         # below: likely occluded, no depth (model fill instead)
    min_range_m: float = 0.1             # depth readings nearer than this are ignored
    surface_offset_scale: float = 1.0    # 0 disables the surface -> joint-centre correction
    offset_sigma_rel: float = 0.3
    model_fill: bool = True
    model_fit_min_joints: int = 3        # rigid fit from this many joints, else translation
    model_outlier_m: Optional[float] = 0.3   # replace depth joints this far from a good fit
    model_outlier_min_inliers: int = 6
    model_sigma_m: float = 0.05          # prior uncertainty of the model's relative 3D
    face_band_m: float = 0.15            # band around a face's reference depth
    hand_band_m: float = 0.25
    occlusion_repair: bool = True        # skeleton reasoning for joints hidden by the body
    occlusion_tol_m: float = 0.04        # measured surface "explained" by an occluding part
    bone_tol_m: float = 0.03             # bone length accepted within max(this, rel * length)
    bone_tol_rel: float = 0.12
    bone_sigma_rel: float = 0.12         # uncertainty of a reference bone length
    gross_bone_m: float = 0.08           # a limb joint whose bone is off by more than
    gross_bone_rel: float = 0.35         # max(this, rel * length) is invalid
    head_pose: bool = True               # lift_frame also estimates faces' head poses
    radii: Dict[str, np.ndarray] = field(default_factory=dict)    # per-layout overrides
    anchors: Dict[str, Optional[Tuple[int, ...]]] = field(default_factory=dict)
    skeletons: Dict[str, SkeletonSpec] = field(default_factory=dict)

    def skeleton(self, layout: str) -> Optional[SkeletonSpec]:
        return self.skeletons.get(layout, SKELETONS.get(layout))

    def radius_table(self, layout: str, n: int) -> np.ndarray:
        r = self.radii.get(layout, BODY_RADIUS_M.get(layout))
        r = np.zeros(n) if r is None else np.asarray(r, dtype=np.float64).reshape(-1)
        if r.size != n:
            raise ValueError(f"radius table of layout '{layout}' has {r.size} values, need {n}")
        return r

    def anchor_joints(self, layout: str, n: int) -> np.ndarray:
        a = self.anchors.get(layout, ANCHOR_JOINTS.get(layout))
        return np.arange(n) if a is None else np.asarray(a, dtype=np.intp)


@dataclass
class LiftStats:
    """What :meth:`Lifter.lift_keypoints` found (for the centroid, diagnostics and tests)."""

    z_ref: float = float("nan")          # person's reference surface depth (m), NaN if none
    px_per_m: float = float("nan")       # depth-image pixels per metre at z_ref
    n_depth: int = 0
    n_model: int = 0
    n_occluded: int = 0                  # joints found hidden behind another body part
    n_rejected: int = 0                  # joints whose bone length ruled their depth out
    model_fit_rms: float = float("nan")


@dataclass
class _Measured:
    """Per-joint depth-window results kept for the occlusion reasoning (NaN = none)."""

    z: np.ndarray          # surface depth of the chosen (nearest) cluster
    spread: np.ndarray
    z_alt: np.ndarray      # the best-supported cluster behind it
    spread_alt: np.ndarray
    frac_alt: np.ndarray   # its share of the window's valid samples
    win_m: np.ndarray      # window radius (m)


class Lifter:
    """Lifts keypoints to 3D with a depth image (see the module docstring for the method)."""

    def __init__(self, config: Optional[LiftingConfig] = None) -> None:
        self.config = config or LiftingConfig()
        self._offsets = _disc_offsets(self.config.sample_grid)
        self._anchor_offsets = _disc_offsets(9)
        self._surface = _surface_factor(self.config.sample_fraction, self._offsets)

    # ---------------------------------------------------------------------------- public API
    def lift_keypoints(self, kps: Keypoints, depth_m: np.ndarray, camera: CameraModel,
                       person_scale_px: Optional[float] = None,
                       depth_camera: Optional[CameraModel] = None,
                       world: Optional[np.ndarray] = None,
                       band: Optional[Tuple[float, float]] = None) -> LiftStats:
        """Fill ``kps.xyz/xyz_valid/xyz_sigma/xyz_source`` in place (colour optical frame, m).

        ``depth_m``: float metres, NaN/<=0/inf = invalid, either on the colour image's grid or
        registered at another resolution (``depth_camera`` its model; if None and the size
        differs, the colour model scaled to it: same field of view). ``person_scale_px``: the
        person's box height in colour pixels (a hint for the first depth search). ``world``:
        the model's metric relative 3D of the same layout for the model fill. ``band``:
        optional (front, back) metres around the reference depth instead of the layout default.
        """
        kps.init_3d()
        stats = LiftStats()
        cfg = self.config
        n = len(kps)
        depth, dcam = self._depth_and_camera(depth_m, camera, depth_camera)
        radii = cfg.radius_table(kps.layout, n)
        anchors = cfg.anchor_joints(kps.layout, n)
        rays = camera.undistort_points(kps.xy)
        uv = dcam.rays_to_pixels(rays)      # the depth image's pixels (registered depth)
        f_d = 0.5 * (dcam.fx + dcam.fy)
        score = np.nan_to_num(kps.score.astype(np.float64), nan=0.0)
        usable = np.all(np.isfinite(uv), axis=1) & dcam.in_image(uv, margin=0.0)

        # ---- person reference depth from the anchors' pooled samples
        ppm0 = self._initial_px_per_m(kps, anchors, person_scale_px, f_d, dcam, camera)
        a_idx = anchors[usable[anchors] & (score[anchors] >= cfg.min_depth_score)]
        if a_idx.size == 0:
            a_idx = np.flatnonzero(usable & (score >= cfg.min_depth_score))
        if a_idx.size == 0:
            a_idx = np.flatnonzero(usable)
        z_ref = np.nan
        if a_idx.size:
            r_px = np.clip(cfg.anchor_window_m * ppm0, cfg.min_window_px, cfg.max_window_px)
            samples = _sample(depth, uv[a_idx], np.full(a_idx.size, r_px), self._anchor_offsets,
                              cfg.min_range_m)
            z_ref = _front_cluster_1d(samples.ravel(), self._gap_fn, cfg.anchor_min_support,
                                      cfg.min_samples)
        if not np.isfinite(z_ref):
            return stats  # no depth on the person at all: everything stays invalid
        stats.z_ref = float(z_ref)
        ppm = f_d / z_ref
        stats.px_per_m = float(ppm)

        # ---- per-joint bands
        front, back = band if band is not None else self._default_band(kps.layout)
        lo = np.full(n, z_ref - front)
        hi = np.full(n, z_ref + back)
        world_ok = world is not None and np.asarray(world).shape == (n, 3)
        if world_ok:
            w = np.asarray(world, dtype=np.float64)
            wa = w[anchors][np.all(np.isfinite(w[anchors]), axis=1)]
            if len(wa) and np.all(np.isfinite(w)):
                # predicted surface depth: torso surface + model's relative depth - radius
                z_anchor_centre = z_ref + float(np.mean(radii[anchors]))
                pred = z_anchor_centre + (w[:, 2] - wa[:, 2].mean()) - radii
                lo = np.maximum(lo, pred - cfg.model_band_m)
                hi = np.minimum(hi, pred + cfg.model_band_m)

        # ---- per-joint robust depth. Low-score joints (likely occluded) are measured only
        # where the skeleton reasoning can check them; face points of a person facing away
        # (model's nose behind the ears) are hidden by the head and not measured.
        spec = cfg.skeleton(kps.layout) if cfg.occlusion_repair else None
        low = score < cfg.min_depth_score
        meas = usable & ~low if spec is None else usable.copy()
        if spec is not None and world_ok and spec.face and spec.ears:
            w = np.asarray(world, dtype=np.float64)
            nose_z = w[spec.face[0], 2]
            ears_z = w[list(spec.ears), 2].mean()
            if np.isfinite(nose_z) and np.isfinite(ears_z) and nose_z > ears_z:
                meas[list(spec.face)] = False
        idx = np.flatnonzero(meas)
        if idx.size:
            win_m = np.maximum(cfg.sample_fraction * radii[idx], cfg.min_window_m)
            r_px = np.clip(win_m * ppm, cfg.min_window_px, cfg.max_window_px)
            samples = _sample(depth, uv[idx], r_px, self._offsets, cfg.min_range_m)
            cl = _front_cluster_rows(samples, self._gap_fn, lo[idx], hi[idx], cfg.min_samples,
                                     cfg.min_support)
            ok = cl.ok
            good = idx[ok]
            p, sig = self._centre_from_surface(rays[good], cl.z[ok], cl.spread[ok], radii[good],
                                               f_d)
            kps.xyz[good] = p
            kps.xyz_valid[good] = True
            kps.xyz_sigma[good] = sig
            kps.xyz_source[good] = SOURCE_DEPTH
            if spec is not None:
                meas = _Measured(np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan),
                                 np.full(n, np.nan), np.zeros(n), np.zeros(n))
                meas.z[idx], meas.spread[idx] = cl.z, cl.spread
                meas.z_alt[idx], meas.spread_alt[idx] = cl.z_alt, cl.spread_alt
                meas.frac_alt[idx] = cl.frac_alt
                meas.win_m[idx] = win_m
                self._repair_occlusions(kps, rays, meas, spec, radii, f_d,
                                        np.asarray(world, dtype=np.float64) if world_ok else None,
                                        low, (lo, hi + radii), stats)

        if world_ok and cfg.model_fill:
            self._model_fill(kps, np.asarray(world, dtype=np.float64), rays, stats)
        stats.n_depth = int(np.sum(kps.xyz_source == SOURCE_DEPTH))
        stats.n_model = int(np.sum(kps.xyz_source == SOURCE_MODEL))
        return stats

    def lift_person(self, person: Person, depth_m: np.ndarray, camera: CameraModel,
                    depth_camera: Optional[CameraModel] = None) -> LiftStats:
        """Lift a person's body (with the model fill from ``person.world``), set
        ``person.centroid``, and lift the person's hands and face."""
        depth, dcam = self._depth_and_camera(depth_m, camera, depth_camera)
        box = np.asarray(person.box, dtype=np.float64)
        scale = float(box[3] - box[1]) if box.size == 4 and np.all(np.isfinite(box)) else None
        stats = self.lift_keypoints(person.body, depth, camera, scale, dcam, person.world)
        person.centroid = self.centroid(person.body, stats, camera)
        for hand in person.hands:
            self.lift_hand(hand, depth, camera, dcam)
        if person.face is not None:
            self.lift_face(person.face, depth, camera, dcam)
        return stats

    def lift_hand(self, hand: Hand, depth_m: np.ndarray, camera: CameraModel,
                  depth_camera: Optional[CameraModel] = None) -> LiftStats:
        return self.lift_keypoints(hand.keypoints, depth_m, camera, None, depth_camera)

    def lift_face(self, face: Face, depth_m: np.ndarray, camera: CameraModel,
                  depth_camera: Optional[CameraModel] = None) -> LiftStats:
        """Lift the face mesh (surface points) and, if configured, estimate the head pose."""
        box = np.asarray(face.box, dtype=np.float64)
        scale = (float(max(box[2] - box[0], box[3] - box[1]))
                 if box.size == 4 and np.all(np.isfinite(box)) else None)
        stats = self.lift_keypoints(face.mesh, depth_m, camera, scale, depth_camera)
        if self.config.head_pose:
            face.head_pose = estimate_head_pose(face.mesh, camera)
        return stats

    def lift_frame(self, result: FrameResult, depth_m: np.ndarray, camera: CameraModel,
                   depth_camera: Optional[CameraModel] = None) -> FrameResult:
        """Lift every person (body, hands, face, centroid) and every face without a body, in
        place; returns ``result``. Depth of another size than its model is rescaled with a
        warning in ``result.warnings``."""
        d = np.asarray(depth_m)
        ref = depth_camera
        if ref is not None and (ref.width, ref.height) != (d.shape[1], d.shape[0]):
            result.warnings.append(
                f"depth image {d.shape[1]}x{d.shape[0]} does not match its CameraInfo "
                f"{ref.width}x{ref.height}: intrinsics scaled")
        depth, dcam = self._depth_and_camera(depth_m, camera, depth_camera)
        for person in result.persons:
            self.lift_person(person, depth, camera, dcam)
        for face in result.faces_without_body:
            self.lift_face(face, depth, camera, dcam)
        return result

    def centroid(self, body: Keypoints, stats: LiftStats,
                 camera: CameraModel) -> Optional[np.ndarray]:
        """Robust torso centre (m): the mean of the shoulder-centre and hip-centre joints when
        both pairs have 3D; otherwise the ray through the 2D torso centre at the person's
        reference depth plus the torso radius; None without any depth."""
        pairs = _TORSO_PAIRS.get(body.layout)
        if body.xyz is not None and pairs is not None:
            (s1, s2), (h1, h2) = pairs
            v = body.xyz_valid
            if v[s1] and v[s2] and v[h1] and v[h2]:
                c = 0.25 * (body.xyz[s1] + body.xyz[s2] + body.xyz[h1] + body.xyz[h2])
                return c.astype(np.float64)
        if not np.isfinite(stats.z_ref):
            return None
        anchors = self.config.anchor_joints(body.layout, len(body))
        xy = body.xy[anchors]
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) == 0:
            return None
        radii = self.config.radius_table(body.layout, len(body))
        ray = camera.undistort_points(xy.mean(axis=0, keepdims=True))
        z = stats.z_ref + self.config.surface_offset_scale * float(np.mean(radii[anchors]))
        c = CameraModel.backproject(ray, z)[0]
        return c if np.all(np.isfinite(c)) else None

    # ------------------------------------------------------------------------------ helpers
    def _gap_fn(self, z: np.ndarray) -> np.ndarray:
        cfg = self.config
        return np.maximum(cfg.gap_min_m, cfg.gap_noise_k * cfg.depth_noise_a * z * z)

    def _default_band(self, layout: str) -> Tuple[float, float]:
        cfg = self.config
        if layout in ("face468", "ibug68"):
            return cfg.face_band_m, cfg.face_band_m
        if layout == "hand21":
            return cfg.hand_band_m, cfg.hand_band_m
        return cfg.band_front_m, cfg.band_back_m

    @staticmethod
    def _depth_and_camera(depth_m, camera: CameraModel,
                          depth_camera: Optional[CameraModel]) -> Tuple[np.ndarray, CameraModel]:
        d = np.asarray(depth_m)
        if d.ndim == 3 and d.shape[2] == 1:
            d = d[:, :, 0]
        if d.ndim != 2:
            raise ValueError(f"depth image must be 2-D, got shape {d.shape}")
        if not np.issubdtype(d.dtype, np.floating):
            raise ValueError(f"depth must be float metres (got {d.dtype}); convert it with "
                             "pose_perception.core.depth.depth_to_metres")
        h, w = d.shape
        cam = depth_camera if depth_camera is not None else camera
        if (cam.width, cam.height) != (w, h):
            cam = cam.scaled(w, h)
        return d, cam

    def _initial_px_per_m(self, kps: Keypoints, anchors: np.ndarray,
                          person_scale_px: Optional[float], f_d: float, dcam: CameraModel,
                          camera: CameraModel) -> float:
        """Depth-image pixels per metre before the depth is known: from the person's box height
        or the 2D torso length, assuming typical sizes; else a person at 2.5 m."""
        cands = []
        to_depth = 0.5 * (dcam.fx + dcam.fy) / (0.5 * (camera.fx + camera.fy))
        extent = _TYPICAL_EXTENT_M.get(kps.layout)
        if person_scale_px and np.isfinite(person_scale_px) and person_scale_px > 0 and extent:
            cands.append(person_scale_px * to_depth / extent)
        pairs = _TORSO_PAIRS.get(kps.layout)
        if pairs is not None:
            (s1, s2), (h1, h2) = pairs
            sc = 0.5 * (kps.xy[s1] + kps.xy[s2])
            hc = 0.5 * (kps.xy[h1] + kps.xy[h2])
            torso = float(np.hypot(*(sc - hc)))
            if np.isfinite(torso) and torso > 0:
                cands.append(torso * to_depth / _TYPICAL_TORSO_M)
        elif extent:
            pts = kps.xy[np.all(np.isfinite(kps.xy), axis=1)]
            if len(pts) >= 2:
                span = float(np.max(np.ptp(pts, axis=0)))
                if span > 0:
                    cands.append(span * to_depth / extent)
        return max(cands) if cands else f_d / 2.5

    def _centre_from_surface(self, rays: np.ndarray, z_s: np.ndarray, spread: np.ndarray,
                             radii: np.ndarray, f_d: float) -> Tuple[np.ndarray, np.ndarray]:
        """Joint centres (M, 3) and 1-sigma (M,) from surface depths along rays (steps 4, 5)."""
        cfg = self.config
        offset = cfg.surface_offset_scale * self._surface * radii
        p_surf = CameraModel.backproject(rays, z_s)
        rng = np.linalg.norm(p_surf, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = p_surf * ((rng + offset) / rng)[:, None]
        sig = np.sqrt(spread ** 2 + (cfg.depth_noise_a * z_s ** 2) ** 2
                      + (cfg.offset_sigma_rel * offset) ** 2
                      + (cfg.keypoint_sigma_px * p[:, 2] / f_d) ** 2)
        return p, sig

    def _repair_occlusions(self, kps: Keypoints, rays: np.ndarray, meas: "_Measured",
                           spec: SkeletonSpec, radii: np.ndarray, f_d: float,
                           world: Optional[np.ndarray], low: np.ndarray,
                           band: Tuple[np.ndarray, np.ndarray], stats: LiftStats) -> None:
        """Joints hidden (wholly or partly) behind another body part.

        A measured joint is *suspect* when its viewing ray, widened by its sampling window,
        meets another part's capsule (built from the lifted joints) no nearer than the measured
        surface: the depth may belong to that part. A suspect whose window is dominated by a
        surface behind the occluder (``frac_alt`` >= 0.5) takes that surface. Otherwise it keeps
        its depth if its bone to a trusted neighbour has the expected length (mirror bone
        measured, else the model's bone scaled, else stature ratio); if not, it is moved along
        its ray to the nearest position at that bone length behind the occluding part and
        marked ``SOURCE_MODEL``. Low-score joints (``low``) are always suspects, and they are
        made invalid where this check is impossible or fails (the model fill may take them).
        Finally joints defined as means of others (``derived``) are recomputed."""
        cfg = self.config
        n = len(kps)
        in_skel = np.zeros(n, bool)
        for a, b, *_ in spec.bones:
            in_skel[[a, b]] = True
        valid = kps.xyz_valid & in_skel
        if valid.sum() >= 3:
            P = kps.xyz.astype(np.float64)
            d = np.concatenate([rays, np.ones((n, 1))], axis=1)
            dnorm = np.linalg.norm(d, axis=1)
            du = d / dnorm[:, None]
            range_meas = meas.z * dnorm
            suspect = valid & low
            behind = np.full(n, -np.inf)  # depth of the occluders' back surfaces on each ray
            parts = [((a,), (b,), r) for a, b, _, _, r in spec.bones] + list(spec.parts)
            for ia, ib, r in parts:
                members = list(set(ia) | set(ib))
                if not np.all(kps.xyz_valid[members]):
                    continue
                cand = valid.copy()
                cand[members] = False
                idx = np.flatnonzero(cand)
                if idx.size == 0:
                    continue
                A, B = P[list(ia)].mean(axis=0), P[list(ib)].mean(axis=0)
                t_in = ray_capsule_range(du[idx], A, B, r + meas.win_m[idx])
                with np.errstate(invalid="ignore"):
                    expl = np.isfinite(t_in) & (range_meas[idx] >= t_in - cfg.occlusion_tol_m)
                if not expl.any():
                    continue
                suspect[idx[expl]] = True
                _, t_out = ray_capsule_range(du[idx], A, B, r, exit_range=True)
                z_out = np.where(np.isfinite(t_out), t_out / dnorm[idx], -np.inf)
                behind[idx[expl]] = np.maximum(behind[idx[expl]], z_out[expl])
            # suspects whose window is mostly a surface behind the occluder: take that surface
            alt = suspect & ~low & (meas.frac_alt >= 0.5) & np.isfinite(meas.z_alt)
            if alt.any():
                j = np.flatnonzero(alt)
                p, sig = self._centre_from_surface(rays[j], meas.z_alt[j], meas.spread_alt[j],
                                                   radii[j], f_d)
                kps.xyz[j], kps.xyz_sigma[j] = p, sig
                P[j] = p
                suspect[j] = False
            self._bone_repair(kps, P, d, suspect, valid, behind, spec, world, low, band,
                              cfg.anchor_joints(kps.layout, n), stats)
        # low-score joints that could not be checked (outside the skeleton, e.g. face points,
        # or too few joints measured to check anything) are not trusted
        drop = low & kps.xyz_valid & (~in_skel | (valid.sum() < 3))
        kps.xyz_valid[drop] = False
        kps.xyz[drop] = np.nan
        kps.xyz_sigma[drop] = np.nan
        kps.xyz_source[drop] = 0
        for j, members in spec.derived:
            m = list(members)
            if np.all(kps.xyz_valid[m]):
                kps.xyz[j] = kps.xyz[m].mean(axis=0)
                kps.xyz_valid[j] = True
                kps.xyz_sigma[j] = float(np.mean(kps.xyz_sigma[m]))
                kps.xyz_source[j] = np.max(kps.xyz_source[m])

    def _bone_repair(self, kps: Keypoints, P: np.ndarray, d: np.ndarray, suspect: np.ndarray,
                     valid: np.ndarray, behind: np.ndarray, spec: SkeletonSpec,
                     world: Optional[np.ndarray], low: np.ndarray,
                     band: Tuple[np.ndarray, np.ndarray], anchors: np.ndarray,
                     stats: LiftStats) -> None:
        """Resolve suspects (see :meth:`_repair_occlusions`), then reject gross bone-length
        violations: a limb joint (not an anchor) whose bone to a valid joint nearer the torso
        differs from its reference by more than ``max(gross_bone_m, gross_bone_rel * L)`` was
        measured on something else (e.g. a wall close behind the person) and becomes invalid.
        ``band``: (lo, hi) per joint, where a moved joint may go (the person's depth band,
        narrowed around the model's prediction when ``Person.world`` is given)."""
        cfg = self.config
        band_lo, band_hi = band
        trusted = valid & ~suspect
        bones = spec.bones
        blen = np.array([np.linalg.norm(P[a] - P[b]) for a, b, *_ in bones])
        bt = np.array([trusted[a] and trusted[b] for a, b, *_ in bones])
        ratios = np.array([bone[2] for bone in bones])
        stature = float(np.median(blen[bt] / ratios[bt])) if bt.sum() >= 2 else float("nan")
        wscale = float("nan")
        if world is not None:
            wl = np.array([np.linalg.norm(world[a] - world[b]) for a, b, *_ in bones])
            ok = bt & (wl > 1e-3)
            if ok.sum() >= 2:
                wscale = float(np.median(blen[ok] / wl[ok]))

        def reference(k: int) -> Tuple[float, int]:
            """(length, quality: 2 mirror bone measured, 1 model / stature, 0 none)."""
            a, b, ratio, mirror, _ = bones[k]
            if mirror >= 0 and bt[mirror]:
                return float(blen[mirror]), 2
            if np.isfinite(wscale):
                return wscale * float(np.linalg.norm(world[a] - world[b])), 1
            if np.isfinite(stature):
                return stature * ratio, 1
            return float("nan"), 0

        resolved = trusted.copy()
        pending = suspect.copy()
        sigma = kps.xyz_sigma.astype(np.float64)

        def invalidate(j: int) -> None:
            kps.xyz[j] = np.nan
            kps.xyz_valid[j] = False
            kps.xyz_sigma[j] = np.nan
            kps.xyz_source[j] = 0

        progress = True
        while progress and pending.any():
            progress = False
            for j in np.flatnonzero(pending):
                opts = []
                for k, (a, b, *_) in enumerate(bones):
                    if j in (a, b):
                        nb = b if a == j else a
                        if resolved[nb]:
                            L, q = reference(k)
                            opts.append((q, -sigma[nb], k, nb, L))
                if not opts:
                    continue
                q, _, k, nb, L = max(opts)
                pending[j], progress = False, True
                resolved[j] = True
                if q == 0:
                    if low[j]:
                        invalidate(j)
                        resolved[j] = False
                    continue
                l_meas = float(np.linalg.norm(P[j] - P[nb]))
                # a 3D bone can look longer by noise, but shorter than its length only when an
                # end is not where it was measured: no absolute floor on that side
                if (l_meas - L <= max(cfg.bone_tol_m, cfg.bone_tol_rel * L)
                        and l_meas >= L * (1.0 - cfg.bone_tol_rel)):
                    # verified: its measured bones can now serve as references
                    trusted[j] = True
                    for kk, (a, b, *_) in enumerate(bones):
                        if trusted[a] and trusted[b] and not bt[kk]:
                            bt[kk] = True
                            blen[kk] = np.linalg.norm(P[a] - P[b])
                    continue
                qa, qb, qc = d[j] @ d[j], d[j] @ P[nb], P[nb] @ P[nb] - L * L
                disc = qb * qb - qa * qc
                # not in front of the measured surface, nor inside the occluding part, and
                # where the model's own 3D allows it (when given)
                z_min = max(P[j, 2], behind[j]) - cfg.occlusion_tol_m
                roots = [] if disc < 0 else [
                    z for z in ((qb - np.sqrt(disc)) / qa, (qb + np.sqrt(disc)) / qa)
                    if z >= z_min and band_lo[j] <= z <= band_hi[j]]
                if not roots:
                    if low[j]:
                        invalidate(j)
                        resolved[j] = False
                    continue
                z = roots[0]
                P[j] = d[j] * z
                along = abs(z - qb / qa)  # distance from the ray's closest approach
                sens = min(L / max(along * np.sqrt(qa), 1e-3), 3.0)
                sigma[j] = np.sqrt(sigma[nb] ** 2 + (cfg.bone_sigma_rel * L * sens) ** 2)
                kps.xyz[j] = P[j]
                kps.xyz_sigma[j] = sigma[j]
                kps.xyz_source[j] = SOURCE_MODEL
                stats.n_occluded += 1
        for j in np.flatnonzero(pending & low):   # unreachable low-score joints
            invalidate(j)

        is_anchor = np.zeros(len(kps), bool)
        is_anchor[anchors] = True
        for k, (a, b, *_) in enumerate(bones):
            if is_anchor[a] and is_anchor[b]:
                continue
            parent, child = (b, a) if is_anchor[b] and not is_anchor[a] else (a, b)
            if not (kps.xyz_valid[parent] and kps.xyz_valid[child]):
                continue
            L, q = reference(k)
            if q == 0:
                continue
            l_now = float(np.linalg.norm(kps.xyz[child].astype(np.float64)
                                         - kps.xyz[parent].astype(np.float64)))
            if abs(l_now - L) > max(cfg.gross_bone_m, cfg.gross_bone_rel * L):
                invalidate(child)
                stats.n_rejected += 1

    def _model_fill(self, kps: Keypoints, world: np.ndarray, rays: np.ndarray,
                    stats: LiftStats) -> None:
        cfg = self.config
        wok = np.all(np.isfinite(world), axis=1)
        valid = kps.xyz_valid & wok & (kps.xyz_source == SOURCE_DEPTH)
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            return
        wts = 1.0 / np.maximum(kps.xyz_sigma[idx].astype(np.float64), 1e-3) ** 2
        R, t, inl = _robust_rigid_fit(world[idx], kps.xyz[idx].astype(np.float64), wts,
                                      cfg.model_fit_min_joints, cfg.model_outlier_m)
        pred = world @ R.T + t
        res = np.linalg.norm(pred[idx] - kps.xyz[idx], axis=1)
        rms = float(np.sqrt(np.mean(res[inl] ** 2))) if np.any(inl) else float("nan")
        stats.model_fit_rms = rms
        fill = ~kps.xyz_valid & wok
        if (cfg.model_outlier_m is not None and int(inl.sum()) >= cfg.model_outlier_min_inliers):
            outl = idx[res > cfg.model_outlier_m]
            fill[outl] = True
        fill &= np.all(np.isfinite(pred), axis=1) & (kps.xyz_source != SOURCE_MODEL)
        if not np.any(fill):
            return
        sig = np.sqrt((rms if np.isfinite(rms) else cfg.model_sigma_m) ** 2
                      + cfg.model_sigma_m ** 2)
        if inl.sum() < cfg.model_fit_min_joints:
            sig = np.sqrt(sig ** 2 + (2 * cfg.model_sigma_m) ** 2)   # orientation not fitted
        # the 2D keypoint is laterally far better than the fitted model: keep the point on its
        # viewing ray at the model's depth where the ray is known
        on_ray = fill & np.all(np.isfinite(rays), axis=1)
        pred[on_ray] = CameraModel.backproject(rays[on_ray], pred[on_ray, 2])
        kps.xyz[fill] = pred[fill]
        kps.xyz_valid[fill] = True
        kps.xyz_sigma[fill] = sig
        kps.xyz_source[fill] = SOURCE_MODEL


# ------------------------------------------------------------------------- numeric helpers
def ray_capsule_range(dirs: np.ndarray, a: np.ndarray, b: np.ndarray, r,
                      exit_range: bool = False):
    """Range along unit rays ``dirs`` (M, 3) from the camera centre to the first hit of the
    capsule (segment a-b, radius ``r``: scalar or (M,)); inf where the ray misses (or the hit is
    behind the camera). With ``exit_range`` also the range where the ray leaves the capsule
    (-inf on a miss): returns (t_in, t_out)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    r = np.asarray(r, np.float64)
    ba, oa = b - a, -a
    baba, baoa, oaoa = ba @ ba, ba @ oa, oa @ oa
    bard, rdoa = dirs @ ba, dirs @ oa
    t = np.full(dirs.shape[0], np.inf)
    t_out = np.full(dirs.shape[0], -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        if baba > 1e-12:  # cylinder body
            qa = baba - bard * bard
            qb = baba * rdoa - baoa * bard
            qc = baba * oaoa - baoa * baoa - r * r * baba
            h = qb * qb - qa * qc
            sq = np.sqrt(np.where(h >= 0, h, 0.0))
            good = (h >= 0) & (qa > 1e-12)
            tb = (-qb - sq) / qa
            y = baoa + tb * bard
            body = good & (y > 0) & (y < baba) & (tb > 0)
            t[body] = tb[body]
            tf = (-qb + sq) / qa
            yf = baoa + tf * bard
            far = good & (yf > 0) & (yf < baba) & (tf > 0)
            t_out[far] = tf[far]
        for centre in (a, b):  # end spheres
            oc = -centre
            sb = dirs @ oc
            sh = sb * sb - (oc @ oc - r * r)
            sq = np.sqrt(np.where(sh >= 0, sh, 0.0))
            ts = -sb - sq
            t = np.where((sh >= 0) & (ts > 0), np.minimum(t, ts), t)
            t_out = np.where((sh >= 0) & (-sb + sq > 0), np.maximum(t_out, -sb + sq), t_out)
    return (t, t_out) if exit_range else t


def _sample(depth: np.ndarray, uv: np.ndarray, radius_px: np.ndarray, offsets: np.ndarray,
            min_range: float) -> np.ndarray:
    """(N, G) depth samples (float64, NaN = invalid/outside) on discs around pixels ``uv``."""
    h, w = depth.shape
    pos = uv[:, None, :] + radius_px[:, None, None] * offsets[None, :, :]
    ix = np.rint(pos[..., 0])
    iy = np.rint(pos[..., 1])
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.full(ix.shape, np.nan)
    out[inside] = depth[iy[inside].astype(np.intp), ix[inside].astype(np.intp)]
    with np.errstate(invalid="ignore"):
        out[~(out > min_range) | ~np.isfinite(out)] = np.nan
    return out


def _front_cluster_1d(values: np.ndarray, gap_fn, min_support: float,
                      min_samples: int) -> float:
    """Median of the nearest depth cluster holding >= min_support of the valid values."""
    v = np.sort(values[np.isfinite(values)])
    if v.size < min_samples:
        return float("nan")
    breaks = np.flatnonzero(np.diff(v) > gap_fn(v[:-1])) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [v.size]])
    need = max(min_samples, min_support * v.size)
    for s, e in zip(starts, ends):
        if e - s >= need:
            return float(np.median(v[s:e]))
    return float("nan")


@dataclass
class _Clusters:
    z: np.ndarray
    spread: np.ndarray
    ok: np.ndarray
    z_alt: np.ndarray
    spread_alt: np.ndarray
    frac_alt: np.ndarray


def _front_cluster_rows(samples: np.ndarray, gap_fn, lo: np.ndarray, hi: np.ndarray,
                        min_samples: int, min_support: float) -> _Clusters:
    """Per row: the nearest depth cluster with enough support whose median lies in [lo, hi]
    (median, 1.4826 * MAD, ok), and the best-supported eligible cluster behind it (median, MAD,
    share of the row's valid samples). Vectorised over rows."""
    n, g = samples.shape
    S = np.sort(samples, axis=1)                 # NaN last
    fin = np.isfinite(S)
    nvalid = fin.sum(axis=1)
    with np.errstate(invalid="ignore"):
        brk = np.diff(S, axis=1) > gap_fn(S[:, :-1])   # NaN -> False
    cid = np.concatenate([np.zeros((n, 1), np.intp), np.cumsum(brk, axis=1)], axis=1)
    rows = np.repeat(np.arange(n), g).reshape(n, g)
    counts = np.zeros((n, g), np.intp)
    np.add.at(counts, (rows[fin], cid[fin]), 1)
    starts = np.cumsum(counts, axis=1) - counts
    ar = np.arange(n)[:, None]
    lo_i = np.clip(starts + (counts - 1) // 2, 0, g - 1)
    hi_i = np.clip(starts + counts // 2, 0, g - 1)
    med = 0.5 * (S[ar, lo_i] + S[ar, hi_i])
    need = np.maximum(min_samples, min_support * nvalid)[:, None]
    with np.errstate(invalid="ignore"):
        eligible = (counts > 0) & (counts >= need) & (med >= lo[:, None]) & (med <= hi[:, None])
    ok = eligible.any(axis=1)
    chosen = np.argmax(eligible, axis=1)
    later = eligible & (np.arange(g)[None, :] > chosen[:, None])
    ok_alt = later.any(axis=1)
    alt = np.argmax(np.where(later, counts, -1), axis=1)
    rr = np.arange(n)

    def stats(c, good):
        z = np.where(good, med[rr, c], np.nan)
        sel = fin & (cid == c[:, None]) & good[:, None]
        dev = np.where(sel, np.abs(S - z[:, None]), np.nan)
        spread = np.full(n, np.nan)
        if np.any(good):
            spread[good] = 1.4826 * np.nanmedian(dev[good], axis=1)
        return z, spread

    z, spread = stats(chosen, ok)
    z_alt, spread_alt = stats(alt, ok_alt)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac_alt = np.where(ok_alt, counts[rr, alt] / np.maximum(nvalid, 1), 0.0)
    return _Clusters(z, spread, ok, z_alt, spread_alt, frac_alt)


def _weighted_kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """R, t minimising sum w |R src + t - dst|^2."""
    w = w / w.sum()
    cs, cd = w @ src, w @ dst
    H = ((src - cs) * w[:, None]).T @ (dst - cd)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    return R, cd - R @ cs


def _robust_rigid_fit(src: np.ndarray, dst: np.ndarray, w: np.ndarray, min_joints: int,
                      outlier_m: Optional[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid fit model -> measured; with fewer than ``min_joints`` (or a degenerate, e.g.
    collinear, set) a weighted translation with R = I. Points farther than ``outlier_m`` (or 3x
    the median residual, at least 0.05 m) are dropped and the fit repeated (3 rounds).
    Returns R, t and the inlier mask."""
    inl = np.ones(len(src), bool)
    R, t = np.eye(3), np.zeros(3)
    for _ in range(3):
        s, d, ww = src[inl], dst[inl], w[inl]
        spread = np.linalg.svd(s - s.mean(axis=0), compute_uv=False) if len(s) >= 3 else None
        if len(s) >= max(3, min_joints) and spread is not None and spread[1] > 0.05:
            R, t = _weighted_kabsch(s, d, ww)
        else:
            R = np.eye(3)
            t = (ww / ww.sum()) @ (d - s)
        res = np.linalg.norm(src @ R.T + t - dst, axis=1)
        thr = max(0.05, 3.0 * float(np.median(res[inl])))
        if outlier_m is not None:
            thr = min(thr, outlier_m) if len(src) >= 4 else thr
        new = res <= thr
        if new.sum() < min(len(src), 2) or np.array_equal(new, inl):
            break
        inl = new
    return R, t, inl
