"""2D keypoints + depth image -> 3D joint centres with uncertainty (ROS-free).

:class:`Lifter` fills each keypoint set's ``xyz`` (colour optical frame, metres), ``xyz_valid``,
``xyz_sigma`` (1-sigma, metres) and ``xyz_source`` (``SOURCE_DEPTH`` measured, ``SOURCE_MODEL``
placed from the model's own metric 3D) in place. Never raises on data: NaN/inf/negative/zero
depth, keypoints outside the image, all-invalid depth only make points invalid; nothing is
guessed.

The surprising fact: depth measures the *skin*, joints are inside the body. Each measured point
is pushed along its viewing ray by the joint's body radius (``BODY_RADIUS_M``, adult
anthropometry), so a lifted shoulder lies about 6 cm behind the depth seen at its pixel.

The method step by step, the radii and the speed: ``docs/lifting.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .camera import CameraModel
from .depth import colour_to_depth_pixels
from .depth_windows import (disc_offsets, front_cluster_1d, front_cluster_rows, sample_windows,
                            surface_factor)
from .head_pose import estimate_head_pose
from .lifting_config import BODY_RADIUS_M, LiftingConfig, joint_radii  # noqa: F401 (re-exported)
from .model_fill import model_fill
from .occlusion import Measured, SkeletonSpec, ray_capsule_range  # noqa: F401 (re-exported)
from .occlusion import repair_occlusions
from .types import (SOURCE_DEPTH, SOURCE_MODEL, Face, FrameResult, Hand, Keypoints, Person)

# torso joints whose 3D mean is the person's centroid, as (shoulder pair, hip pair)
_TORSO_PAIRS = {"blazepose33": ((11, 12), (23, 24)), "coco17": ((5, 6), (11, 12))}
# typical sizes used to guess pixels-per-metre before any depth is known
_TYPICAL_EXTENT_M = {"blazepose33": 1.7, "coco17": 1.7, "hand21": 0.19, "face468": 0.16,
                     "ibug68": 0.16}
_TYPICAL_TORSO_M = 0.5


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
class _View:
    """One keypoint set as the depth image sees it (step 1 of :meth:`Lifter.lift_keypoints`)."""

    camera: CameraModel
    depth: np.ndarray            # metres
    dcam: CameraModel            # the depth image's model
    rays: np.ndarray             # (n, 2) undistorted normalised rays
    uv: np.ndarray               # (n, 2) depth-image pixels
    f_d: float                   # depth-image focal length [px]
    score: np.ndarray            # (n,) scores, NaN -> 0
    usable: np.ndarray           # (n,) bool: a depth pixel inside the image
    radii: np.ndarray            # (n,) body radii [m]
    anchors: np.ndarray          # joint indices pooled for the person's depth


class Lifter:
    """Lifts keypoints to 3D with a depth image (the method: ``docs/lifting.md``)."""

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
        view = self._view(kps, depth_m, camera, depth_camera)
        z_ref = self._reference_depth(kps, view, person_scale_px)
        if not np.isfinite(z_ref):
            return stats  # no depth on the person at all: everything stays invalid
        stats.z_ref = float(z_ref)
        stats.px_per_m = float(view.f_d / z_ref)
        w = np.asarray(world, dtype=np.float64) if world is not None else None
        if w is not None and w.shape != (n, 3):
            w = None
        lo, hi = self._joint_bands(kps.layout, view, z_ref, band, w)
        spec = cfg.skeleton(kps.layout) if cfg.occlusion_repair else None
        idx = np.flatnonzero(self._joints_to_measure(view, spec, w))
        if idx.size:
            cl, win_m = self._measure_joints(kps, view, idx, lo, hi, stats.px_per_m,
                                             alternatives=spec is not None)
            if spec is not None:
                self._repair_occlusions(kps, view, idx, cl, win_m, spec, w, lo, hi, stats)
        if w is not None and cfg.model_fill:
            stats.model_fit_rms = model_fill(kps, w, view.rays, cfg)
        stats.n_depth = int(np.count_nonzero(kps.xyz_source == SOURCE_DEPTH))
        stats.n_model = int(np.count_nonzero(kps.xyz_source == SOURCE_MODEL))
        return stats

    def lift_person(self, person: Person, depth_m: np.ndarray, camera: CameraModel,
                    depth_camera: Optional[CameraModel] = None, face: bool = True) -> LiftStats:
        """Lift a person's body (with the model fill from ``person.world``), set
        ``person.centroid``, and lift the person's hands and (with ``face``) face."""
        depth, dcam = self.depth_and_camera(depth_m, camera, depth_camera)
        if person.box_only:
            person.body.init_3d()
            person.centroid, person.centroid_sigma = self.box_surface(person.box, depth, camera,
                                                                      dcam)
            return LiftStats()
        box = np.asarray(person.box, dtype=np.float64)
        scale = float(box[3] - box[1]) if box.size == 4 and np.isfinite(box).all() else None
        stats = self.lift_keypoints(person.body, depth, camera, scale, dcam, person.world)
        person.centroid = self.centroid(person.body, stats, camera)
        for hand in person.hands:
            self.lift_hand(hand, depth, camera, dcam)
        if face and person.face is not None:
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

    def lift_faces(self, faces: Sequence[Face], depth_m: np.ndarray, camera: CameraModel,
                   depth_camera: Optional[CameraModel] = None) -> None:
        """:meth:`lift_face` on each of ``faces``."""
        depth, dcam = self.depth_and_camera(depth_m, camera, depth_camera)
        for face in faces:
            self.lift_face(face, depth, camera, dcam)

    def lift_frame(self, result: FrameResult, depth_m: np.ndarray, camera: CameraModel,
                   depth_camera: Optional[CameraModel] = None) -> FrameResult:
        """Lift every person (body, hands, face, centroid) and every face without a body, in
        place, but the faces of ``result.faces_lifted`` (lifted already with this depth);
        returns ``result``. Depth of another size than its model is rescaled with a warning in
        ``result.warnings``."""
        d = np.asarray(depth_m)
        ref = depth_camera
        if ref is not None and (ref.width, ref.height) != (d.shape[1], d.shape[0]):
            result.warnings.append(
                f"depth image {d.shape[1]}x{d.shape[0]} does not match its CameraInfo "
                f"{ref.width}x{ref.height}: intrinsics scaled")
        depth, dcam = self.depth_and_camera(depth_m, camera, depth_camera)
        done = {id(f) for f in result.faces_lifted}
        for person in result.persons:
            self.lift_person(person, depth, camera, dcam, face=id(person.face) not in done)
        self.lift_faces([f for f in result.faces_without_body if id(f) not in done], depth,
                        camera, dcam)
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

    # ------------------------------------------------------------- steps of lift_keypoints
    def _view(self, kps: Keypoints, depth_m: np.ndarray, camera: CameraModel,
              depth_camera: Optional[CameraModel]) -> _View:
        """Step 1: each keypoint's ray and depth pixel, and which keypoints can be measured."""
        n = len(kps)
        depth, dcam = self.depth_and_camera(depth_m, camera, depth_camera)
        rays = camera.undistort_points(kps.xy)
        # the depth image's pixels: the same pixels on the colour grid, else via the rays
        uv = (kps.xy.astype(np.float64) if self._on_colour_grid(camera, dcam)
              else dcam.rays_to_pixels(rays))
        score = kps.score.astype(np.float64)
        score[np.isnan(score)] = 0.0
        usable = dcam.in_image(uv, margin=0.0)   # False for NaN / inf pixels too
        return _View(camera, depth, dcam, rays, uv, 0.5 * (dcam.fx + dcam.fy), score, usable,
                     self.config.radius_table(kps.layout, n),
                     self.config.anchor_joints(kps.layout, n))

    def _reference_depth(self, kps: Keypoints, view: _View,
                         person_scale_px: Optional[float]) -> float:
        """Step 2: the person's reference surface depth from the anchors' pooled samples (the
        confident usable anchors, else any confident usable joint, else any usable one); NaN
        without depth on the person."""
        cfg = self.config
        anchors, usable, score = view.anchors, view.usable, view.score
        ppm0 = self._initial_px_per_m(kps, anchors, person_scale_px, view.f_d, view.dcam,
                                      view.camera)
        a_idx = anchors[usable[anchors] & (score[anchors] >= cfg.min_depth_score)]
        if a_idx.size == 0:
            a_idx = np.flatnonzero(usable & (score >= cfg.min_depth_score))
        if a_idx.size == 0:
            a_idx = np.flatnonzero(usable)
        if a_idx.size == 0:
            return np.nan
        r_px = min(max(cfg.anchor_window_m * ppm0, cfg.min_window_px), cfg.max_window_px)
        samples = sample_windows(view.depth, view.uv[a_idx], np.full(a_idx.size, r_px),
                                 self._anchor_offsets, cfg.min_range_m)
        return front_cluster_1d(samples.ravel(), self._gap_fn, cfg.anchor_min_support,
                                cfg.min_samples)

    def _joint_bands(self, layout: str, view: _View, z_ref: float,
                     band: Optional[Tuple[float, float]], world: Optional[np.ndarray]
                     ) -> Tuple[np.ndarray, np.ndarray]:
        """Step 2, per joint: the (lo, hi) surface depths that can be this person's, narrowed
        around the depth the model predicts for each joint where its 3D is known."""
        n = len(view.score)
        front, back = band if band is not None else self._default_band(layout)
        lo = np.full(n, z_ref - front)
        hi = np.full(n, z_ref + back)
        radii, anchors = view.radii, view.anchors
        if world is not None and anchors.size and np.isfinite(world).all():
            # predicted surface depth: torso surface + model's relative depth - radius
            z_anchor_centre = z_ref + float(radii[anchors].mean())
            pred = z_anchor_centre + (world[:, 2] - world[anchors, 2].mean()) - radii
            np.maximum(lo, pred - self.config.model_band_m, out=lo)
            np.minimum(hi, pred + self.config.model_band_m, out=hi)
        return lo, hi

    def _joints_to_measure(self, view: _View, spec: Optional[SkeletonSpec],
                           world: Optional[np.ndarray]) -> np.ndarray:
        """(n,) bool: the joints whose depth is read. Low-score joints (likely occluded) only
        where the skeleton reasoning can check them; not the face points of a person facing
        away (the model's nose behind the ears): the head hides them."""
        if spec is None:
            return view.usable & (view.score >= self.config.min_depth_score)
        meas = view.usable.copy()
        if world is not None and spec.face and spec.ears:
            nose_z = world[spec.face[0], 2]
            ears_z = world[list(spec.ears), 2].mean()
            if np.isfinite(nose_z) and np.isfinite(ears_z) and nose_z > ears_z:
                meas[list(spec.face)] = False
        return meas

    def _measure_joints(self, kps: Keypoints, view: _View, idx: np.ndarray, lo: np.ndarray,
                        hi: np.ndarray, ppm: float, alternatives: bool = True):
        """Steps 3-5 for the joints ``idx``: the nearest supported surface in each window
        within the band, pushed to the joint centre (``SOURCE_DEPTH``). Returns the window
        clusters (with the surfaces behind when ``alternatives``) and the windows' radii [m]
        (for the occlusion repair)."""
        cfg = self.config
        radii = view.radii
        win_m = np.maximum(cfg.sample_fraction * radii[idx], cfg.min_window_m)
        r_px = np.clip(win_m * ppm, cfg.min_window_px, cfg.max_window_px)
        samples = sample_windows(view.depth, view.uv[idx], r_px, self._offsets, cfg.min_range_m)
        cl = front_cluster_rows(samples, self._gap_fn, lo[idx], hi[idx], cfg.min_samples,
                                cfg.min_support, alternatives)
        ok = cl.ok
        good = idx[ok]
        p, sig = self._centre_from_surface(view.rays[good], cl.z[ok], cl.spread[ok],
                                           radii[good], view.f_d)
        kps.xyz[good] = p
        kps.xyz_valid[good] = True
        kps.xyz_sigma[good] = sig
        kps.xyz_source[good] = SOURCE_DEPTH
        return cl, win_m

    def _repair_occlusions(self, kps: Keypoints, view: _View, idx: np.ndarray, cl,
                           win_m: np.ndarray, spec: SkeletonSpec, world: Optional[np.ndarray],
                           lo: np.ndarray, hi: np.ndarray, stats: LiftStats) -> None:
        """Step 6: :func:`pose_perception.core.occlusion.repair_occlusions` on the windows'
        measurements."""
        n = len(kps)
        rays, radii, f_d = view.rays, view.radii, view.f_d
        meas = Measured(*np.full((4, n), np.nan), *np.zeros((2, n)))
        meas.z[idx], meas.spread[idx] = cl.z, cl.spread
        meas.z_alt[idx], meas.spread_alt[idx] = cl.z_alt, cl.spread_alt
        meas.frac_alt[idx] = cl.frac_alt
        meas.win_m[idx] = win_m

        def to_centre(j, z_s, spread):
            return self._centre_from_surface(rays[j], z_s, spread, radii[j], f_d)

        low = view.score < self.config.min_depth_score
        n_occ, n_rej = repair_occlusions(kps, rays, meas, spec, world, low, (lo, hi + radii),
                                         view.anchors, self.config, to_centre)
        stats.n_occluded += n_occ
        stats.n_rejected += n_rej

    # ------------------------------------------------------------------------------ helpers
    def _gap_fn(self, z: np.ndarray) -> np.ndarray:
        """The depth gap that separates two surfaces near depth ``z``: the larger of
        ``gap_min_m`` and ``gap_noise_k`` sensor sigmas."""
        cfg = self.config
        gap = (cfg.gap_noise_k * cfg.depth_noise_a) * z
        gap *= z
        return np.maximum(gap, cfg.gap_min_m, out=gap)

    def _default_band(self, layout: str) -> Tuple[float, float]:
        cfg = self.config
        if layout in ("face468", "ibug68"):
            return cfg.face_band_m, cfg.face_band_m
        if layout == "hand21":
            return cfg.hand_band_m, cfg.hand_band_m
        return cfg.band_front_m, cfg.band_back_m

    @staticmethod
    def depth_and_camera(depth_m, camera: CameraModel,
                         depth_camera: Optional[CameraModel]) -> Tuple[np.ndarray, CameraModel]:
        """The depth image as 2-D float metres and its camera model (``depth_camera``, else the
        colour one, scaled to the image's size); ``ValueError`` for any other shape or type."""
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
            xy = kps.xy
            pts = xy if np.isfinite(xy).all() else xy[np.isfinite(xy).all(axis=1)]
            if len(pts) >= 2:
                # column by column: a reduction along the long axis is much faster
                span = max(float(c.max() - c.min()) for c in pts.T)
                if span > 0:
                    cands.append(span * to_depth / extent)
        return max(cands) if cands else f_d / 2.5

    def _centre_from_surface(self, rays: np.ndarray, z_s: np.ndarray, spread: np.ndarray,
                             radii: np.ndarray, f_d: float) -> Tuple[np.ndarray, np.ndarray]:
        """Joint centres (M, 3) and 1-sigma (M,) from surface depths along rays (steps 4, 5)."""
        cfg = self.config
        offset = cfg.surface_offset_scale * self._surface * radii
        p = CameraModel.backproject(rays, z_s)
        rng = np.sqrt(np.einsum("ij,ij->i", p, p))
        with np.errstate(invalid="ignore", divide="ignore"):
            p *= ((rng + offset) / rng)[:, None]
        sig = np.sqrt(spread ** 2 + (cfg.depth_noise_a * z_s ** 2) ** 2
                      + (cfg.offset_sigma_rel * offset) ** 2
                      + (cfg.keypoint_sigma_px * p[:, 2] / f_d) ** 2)
        return p, sig
