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
   behind the person, say) is made invalid. (:mod:`pose_perception.core.occlusion`.)
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

Speed (a per-frame hot path: a body and a 468-point face every frame): windows are read with one
gather for all keypoints and clustered with one sort (:mod:`pose_perception.core.depth_windows`),
all occluding capsules meet all rays in one batched call, and registered depth on the colour
grid is read at the keypoint pixels themselves (no re-projection). About 1.2 ms for a body and
2.7 ms for a body with its face and head pose on one core of the development machine (was 4.2
and 7.3 ms before vectorising), with identical results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from .camera import CameraModel
from .depth import colour_to_depth_pixels
from .depth_windows import (disc_offsets, front_cluster_1d, front_cluster_rows, median,
                            sample_windows, surface_factor)
from .geometry import weighted_kabsch
from .head_pose import estimate_head_pose
from .layouts import BLAZEPOSE33_TO_COCO17
from .occlusion import (SKELETONS, Measured, SkeletonSpec, ray_capsule_range,  # noqa: F401
                        repair_occlusions)
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


def joint_radii(layout: str, n: int, table: Optional[np.ndarray] = None) -> np.ndarray:
    """(n,) body radius [m] of each point of ``layout``: how far the lifted point (joint centre)
    lies behind the skin, from ``table`` or :data:`BODY_RADIUS_M`; zeros for a layout without a
    table (its points are lifted as surface points). The safety monitor subtracts the same radii
    to measure distances to the body surface. Raises ``ValueError`` for a table of another size."""
    r = BODY_RADIUS_M.get(layout) if table is None else table
    r = np.zeros(n) if r is None else np.asarray(r, dtype=np.float64).reshape(-1)
    if r.size != n:
        raise ValueError(f"radius table of layout '{layout}' has {r.size} values, need {n}")
    return r


# joints pooled for the person-level depth (None = all)
ANCHOR_JOINTS: Dict[str, Optional[Tuple[int, ...]]] = {
    "blazepose33": (11, 12, 23, 24),
    "coco17": (5, 6, 11, 12),
    "hand21": (0, 1, 5, 9, 13, 17),
    "face468": (1, 4, 5, 6, 9, 151, 168, 195, 197, 50, 280, 101, 330, 36, 266),
    "ibug68": tuple(range(27, 48)),
}


# torso joints whose 3D mean is the person's centroid, as (shoulder pair, hip pair)
_TORSO_PAIRS = {"blazepose33": ((11, 12), (23, 24)), "coco17": ((5, 6), (11, 12))}
# typical sizes used to guess pixels-per-metre before any depth is known
_TYPICAL_EXTENT_M = {"blazepose33": 1.7, "coco17": 1.7, "hand21": 0.19, "face468": 0.16,
                     "ibug68": 0.16}
_TYPICAL_TORSO_M = 0.5


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
        return joint_radii(layout, n, self.radii.get(layout))

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


class Lifter:
    """Lifts keypoints to 3D with a depth image (see the module docstring for the method)."""

    def __init__(self, config: Optional[LiftingConfig] = None) -> None:
        self.config = config or LiftingConfig()
        self._offsets = disc_offsets(self.config.sample_grid)
        self._anchor_offsets = disc_offsets(9)
        self._surface = surface_factor(self.config.sample_fraction, self._offsets)
        self._same_grid: Tuple[Optional[CameraModel], Optional[CameraModel], bool] = (
            None, None, False)

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
        # the depth image's pixels: the same pixels on the colour grid, else via the rays
        uv = (kps.xy.astype(np.float64) if self._on_colour_grid(camera, dcam)
              else dcam.rays_to_pixels(rays))
        f_d = 0.5 * (dcam.fx + dcam.fy)
        score = kps.score.astype(np.float64)
        score[np.isnan(score)] = 0.0
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
            samples = sample_windows(depth, uv[a_idx], np.full(a_idx.size, r_px),
                                     self._anchor_offsets, cfg.min_range_m)
            z_ref = front_cluster_1d(samples.ravel(), self._gap_fn, cfg.anchor_min_support,
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
            samples = sample_windows(depth, uv[idx], r_px, self._offsets, cfg.min_range_m)
            cl = front_cluster_rows(samples, self._gap_fn, lo[idx], hi[idx], cfg.min_samples,
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
                meas = Measured(np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan),
                                np.full(n, np.nan), np.zeros(n), np.zeros(n))
                meas.z[idx], meas.spread[idx] = cl.z, cl.spread
                meas.z_alt[idx], meas.spread_alt[idx] = cl.z_alt, cl.spread_alt
                meas.frac_alt[idx] = cl.frac_alt
                meas.win_m[idx] = win_m

                def to_centre(j, z_s, spread):
                    return self._centre_from_surface(rays[j], z_s, spread, radii[j], f_d)

                n_occ, n_rej = repair_occlusions(
                    kps, rays, meas, spec,
                    np.asarray(world, dtype=np.float64) if world_ok else None, low,
                    (lo, hi + radii), anchors, cfg, to_centre)
                stats.n_occluded += n_occ
                stats.n_rejected += n_rej

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
        if person.box_only:
            person.body.init_3d()
            person.centroid, person.centroid_sigma = self.box_surface(person.box, depth, camera,
                                                                      dcam)
            return LiftStats()
        box = np.asarray(person.box, dtype=np.float64)
        scale = float(box[3] - box[1]) if box.size == 4 and np.all(np.isfinite(box)) else None
        stats = self.lift_keypoints(person.body, depth, camera, scale, dcam, person.world)
        person.centroid = self.centroid(person.body, stats, camera)
        for hand in person.hands:
            self.lift_hand(hand, depth, camera, dcam)
        if person.face is not None:
            self.lift_face(person.face, depth, camera, dcam)
        return stats

    def box_surface(self, box: np.ndarray, depth: np.ndarray, camera: CameraModel,
                    dcam: CameraModel, near_quantile: float = 0.1, max_samples: int = 4000
                    ) -> Tuple[Optional[np.ndarray], float]:
        """The nearest surface of a person known only by a box (``x0, y0, x1, y1`` colour
        pixels): the depth samples of the box's central part (the middle 60 % of its width and
        80 % of its height, where the person is rather than the background), their nearest
        cluster holding ``anchor_min_support`` of them (a person, not a thing in front), that
        cluster's ``near_quantile`` depth, on the viewing ray of the box centre. Returns
        ``(point (3,) metres or None, sigma metres)``: sigma is half the cluster's spread
        between that quantile and its median, at least the sensor noise."""
        cfg = self.config
        b = np.asarray(box, np.float64).reshape(-1)
        if b.size != 4 or not np.all(np.isfinite(b)) or b[2] <= b[0] or b[3] <= b[1]:
            return None, float("nan")
        cw, ch = b[2] - b[0], b[3] - b[1]
        inner = np.array([[b[0] + 0.2 * cw, b[1] + 0.1 * ch], [b[2] - 0.2 * cw, b[3] - 0.1 * ch]])
        if not self._on_colour_grid(camera, dcam):
            inner = colour_to_depth_pixels(inner, camera, dcam)
        h, w = depth.shape
        x0, y0 = (int(np.clip(np.floor(v), 0, n - 1)) for v, n in zip(inner.min(0), (w, h)))
        x1, y1 = (int(np.clip(np.ceil(v), 0, n - 1)) for v, n in zip(inner.max(0), (w, h)))
        if x1 < x0 or y1 < y0:
            return None, float("nan")
        step = max(1, int(np.sqrt((x1 - x0 + 1) * (y1 - y0 + 1) / max_samples)))
        v = depth[y0:y1 + 1:step, x0:x1 + 1:step].astype(np.float64).ravel()
        v = v[np.isfinite(v) & (v > 0)]
        z_med = front_cluster_1d(v, self._gap_fn, cfg.anchor_min_support, cfg.min_samples)
        if not np.isfinite(z_med):
            return None, float("nan")
        members = v[np.abs(v - z_med) <= cfg.band_back_m]
        z_near = float(np.quantile(members, near_quantile)) if members.size else z_med
        sigma = max(0.5 * (z_med - z_near), cfg.depth_noise_a * z_near * z_near)
        ray = camera.undistort_points(np.array([[(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]]))
        p = CameraModel.backproject(ray, z_near)[0]
        return (p.astype(np.float64), float(sigma)) if np.all(np.isfinite(p)) else \
            (None, float("nan"))

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
        if self.config.head_pose and face.mesh.layout == "face468":
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

    def _on_colour_grid(self, camera: CameraModel, dcam: CameraModel) -> bool:
        """True when depth pixels are colour pixels (the answer for the last pair of camera
        objects is kept: comparing two models costs more than lifting a few joints)."""
        if dcam is camera:
            return True
        c, d, same = self._same_grid
        if c is not camera or d is not dcam:
            same = dcam.same_geometry(camera)
            self._same_grid = (camera, dcam, same)
        return same

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
                span = float(np.max(pts.max(axis=0) - pts.min(axis=0)))
                if span > 0:
                    cands.append(span * to_depth / extent)
        return max(cands) if cands else f_d / 2.5

    def _centre_from_surface(self, rays: np.ndarray, z_s: np.ndarray, spread: np.ndarray,
                             radii: np.ndarray, f_d: float) -> Tuple[np.ndarray, np.ndarray]:
        """Joint centres (M, 3) and 1-sigma (M,) from surface depths along rays (steps 4, 5)."""
        cfg = self.config
        offset = cfg.surface_offset_scale * self._surface * radii
        p = np.empty((len(z_s), 3))
        p[:, :2] = rays
        p[:, :2] *= z_s[:, None]
        p[:, 2] = z_s
        rng = np.sqrt(np.einsum("ij,ij->i", p, p))
        with np.errstate(invalid="ignore", divide="ignore"):
            p *= ((rng + offset) / rng)[:, None]
        sig = np.sqrt(spread ** 2 + (cfg.depth_noise_a * z_s ** 2) ** 2
                      + (cfg.offset_sigma_rel * offset) ** 2
                      + (cfg.keypoint_sigma_px * p[:, 2] / f_d) ** 2)
        return p, sig

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
            R, t = weighted_kabsch(s, d, ww)
        else:
            R = np.eye(3)
            t = (ww / ww.sum()) @ (d - s)
        res = np.linalg.norm(src @ R.T + t - dst, axis=1)
        thr = max(0.05, 3.0 * median(res[inl]))
        if outlier_m is not None:
            thr = min(thr, outlier_m) if len(src) >= 4 else thr
        new = res <= thr
        if new.sum() < min(len(src), 2) or np.array_equal(new, inl):
            break
        inl = new
    return R, t, inl
