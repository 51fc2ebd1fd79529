"""The keypoint stage: RGB image in, 2D body (+ face, + hands) keypoints of every person out.

``KeypointPipeline.process(rgb, stamp_s=None)`` runs, per frame:

1. **detect** - the BlazePose person detector (whole image letterboxed, plus short-side tiles so
   that small people are seen closer) and the BlazeFace detector. It runs when nobody is tracked
   (all regions), and then every ``detector_interval`` frames or ``detector_period_s`` seconds of
   stream time, whichever comes first (the whole image plus one tile in turn while people are
   tracked, ``detector_tile_rotation``).
2. **body** - ``pose_landmark_full`` on one rotated crop per tracked person, all crops in one
   batch. A tracked person's crop comes from their previous landmarks (so people who turn their
   face away stay tracked). A person whose pose flag falls below ``min_pose_presence`` is
   retried once on a wider crop (``lost_retry_scale``: frames far apart in time, e.g. dropped
   by a slow consumer); still lost, the full detector runs in the same frame
   (``redetect_on_loss``), so a person is found again at once, not at the next detector frame.
   Detections are then matched with this frame's people: a detection whose face lies in a
   person's head region (or whose crop overlaps a person's) is that person; when the sizes of
   their crops disagree by more than ``reanchor_ratio``, the person is run again from the
   detection (crops derived from landmarks follow a person walking towards or away from the
   camera only slowly). Only the other detections get a landmark run; new crops are run a
   second time on the crop derived from their own landmarks (``refine_new_crops``), which is
   what tracking converges to. Two crops on one person are merged (``same_person``: the median
   distance of the points both see). Faces found by the face detector that no person accounts
   for seed a body crop below them (``seed_bodies_from_faces``): the person detector misses
   some people.
3. **face** - the 468-point mesh on a head crop derived from the body's face keypoints (then
   from the previous mesh; a lost tracked mesh is retried from the head in the same frame),
   plus faces without a body from a BlazeFace detector (tracked by their mesh afterwards).
4. **hands** (``enable_hands``) - 21 points per hand from crops at the body's wrists.

With ``parallel`` (and 2+ usable cores) a worker thread runs the detectors and the meshes on the
crops tracked from the previous frame's meshes while the body model runs; ``_faces`` takes those
meshes whose crop still agrees with the body's head and runs the others. The models' threads do
not spin (``inference``), so two models share two cores well.

Timings per stage (ms) go into ``FrameResult.timings_ms``: the time each stage itself took,
wherever it ran (stages run in parallel may add up to more than the frame took; a same-frame
re-detection counts as ``detect``). ROS-free.
"""
from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import body as body_mod
from . import face as face_mod
from . import hands as hands_mod
from .crops import CropSampler, rect_corners
from .inference import DEFAULT_PROVIDERS, OnnxModel, resolve_model_path, usable_cores
from .person_detector import PersonDetector, covered_fraction, whole_image_rect
from .layouts import get_layout
from .precision import check_precision
from .ssd import Detection, box_iou, tile_rects
from .types import FOUND_BY_BOX, FrameResult, Keypoints, Person, RotatedRect

LOG = logging.getLogger(__name__)


@dataclass
class KeypointConfig:
    """Settings of the keypoint stage (the ROS node maps its parameters onto these)."""

    enable_face: bool = True
    enable_hands: bool = False
    providers: Tuple[str, ...] = DEFAULT_PROVIDERS
    threads: Optional[int] = None          # intra-op threads per model; None = cores, max 4
    require_gpu: bool = False
    # 'auto' (fp16 on GPU providers for the models that keep their accuracy, else fp32),
    # 'fp32', 'fp16' (GPU providers only) or 'fp16-emulated' (accuracy checks on CPU);
    # see core/precision.py
    precision: str = "auto"
    precision_models: Tuple[str, ...] = ()  # models 'precision' applies to (empty: all)
    models_dir: Optional[str] = None       # None: $POSE_PERCEPTION_MODEL_DIR or the user cache
    max_persons: int = 4
    # a worker thread runs the tracked faces' meshes and the detectors while the body model runs
    # (used with 2+ usable cores; the models' own threads do not spin, so they share the cores)
    parallel: bool = True
    # run the person detector every N frames (always when nobody is tracked); 1 = every frame
    detector_interval: int = 10
    # ... and at least every this many seconds of stream time (needs stamps; 0 = frames only)
    detector_period_s: float = 1.0
    detector_min_score: float = 0.5
    detector_tiles: bool = True            # second, closer detector pass on short-side squares
    # while people are tracked, periodic runs scan the whole image plus one tile in turn
    detector_tile_rotation: bool = True
    min_pose_presence: float = 0.5         # pose flag below this: person lost
    lost_retry_scale: float = 1.5          # a lost tracked crop is retried this much wider (1: no)
    redetect_on_loss: bool = True          # a person lost: full detector run in the same frame
    # detector frames: a tracked person whose crop differs in size from their detection's crop
    # by more than this factor is run again from the detection (0: never)
    reanchor_ratio: float = 1.25
    min_face_presence: float = 0.5
    min_hand_presence: float = 0.5
    face_detector: str = "full"            # faces without a body: 'full', 'short' or 'none'
    # new body faces: short-range face detector in the head region (as MediaPipe Holistic);
    # False: crop straight from the head keypoints
    face_recrop_detector: bool = True
    refine_new_crops: bool = True          # re-run new crops on their landmark-derived crop
    seed_bodies_from_faces: bool = True    # look for a body below faces no person accounts for
    heatmap_refinement: bool = True
    # same person if the median distance of the points both see is < this x body size
    duplicate_distance: float = 0.1
    track_overlap_iou: float = 0.5         # detection ignored if its crop overlaps a person's
    min_crop_px: float = 8.0               # smaller body crops are ignored
    # whole-body person detector (core/person_detector.py) beside BlazePose's face-anchored one:
    # its boxes that no person accounts for get a landmark run; without usable landmarks they
    # are published as box-only people (keypoints invalid)
    person_detector: bool = True
    person_detector_min_score: float = 0.5
    # weaker boxes (this score up to person_detector_min_score) count only where the landmark
    # model confirms a person in them (at most max_box_checks such runs per scan)
    person_detector_confirm_score: float = 0.3
    max_box_checks: int = 32
    person_detector_nms_iou: float = 0.5   # boxes overlapping a better one by more are dropped
    # tiles of this many image pixels for large images (short side >= 1.5x this); 0: never
    person_detector_tile_px: float = 540.0
    # a detector box is a person already found when IoU(box, person's box) >= this
    person_box_match_iou: float = 0.4
    publish_box_only: bool = True          # people found by a box only are published
    max_box_only: int = 32                 # at most this many box-only people per frame

    def __post_init__(self) -> None:
        if self.face_detector not in ("full", "short", "none"):
            raise ValueError("face_detector must be 'full', 'short' or 'none'")
        if self.max_persons < 1 or self.detector_interval < 1:
            raise ValueError("max_persons and detector_interval must be >= 1")
        if not (0.0 < self.person_detector_confirm_score <= self.person_detector_min_score < 1.0
                and 0.0 < self.person_box_match_iou <= 1.0):
            raise ValueError("need 0 < person_detector_confirm_score <= "
                             "person_detector_min_score < 1 and person_box_match_iou in (0, 1]")
        if not (self.person_detector_tile_px >= 0 and self.max_box_only >= 0):
            raise ValueError("person_detector_tile_px and max_box_only must be >= 0")
        if not (self.detector_period_s >= 0 and self.reanchor_ratio >= 0):
            raise ValueError("detector_period_s and reanchor_ratio must be >= 0")
        if not self.lost_retry_scale >= 1.0:
            raise ValueError("lost_retry_scale must be >= 1 (1 = no retry)")
        self.providers = tuple(self.providers)
        check_precision(self.precision)
        self.precision_models = tuple(self.precision_models)


@dataclass
class _Track:
    """What is carried from one frame to the next for one person."""

    roi: RotatedRect                            # body crop for the next frame
    face_roi: Optional[RotatedRect] = None
    hand_rois: Dict[str, RotatedRect] = field(default_factory=dict)
    # how far the whole-body detector's box reached beyond the landmarks' box when it last saw
    # the person (x0, y0, x1, y1 offsets in units of the landmarks' box height)
    box_margin: Optional[np.ndarray] = None


@dataclass
class _FaceTrack:
    roi: RotatedRect


# what became of a body candidate crop (``KeypointPipeline._add_bodies``)
FOUND, DUPLICATE, ABSENT = "found", "duplicate", "absent"


def _rect_bounds(r: RotatedRect) -> np.ndarray:
    c = rect_corners(r)
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], np.float32)


def _scaled(r: RotatedRect, scale: float) -> RotatedRect:
    return RotatedRect(r.cx, r.cy, r.width * scale, r.height * scale, r.rotation)


def _size_ratio(a: RotatedRect, b: RotatedRect) -> float:
    """How many times larger the larger of two crops is (inf for an empty one)."""
    small, large = sorted((abs(a.width), abs(b.width)))
    return large / small if small > 0 else math.inf


def same_person(a: Keypoints, b: Keypoints, width: int, height: int,
                max_distance: float = 0.1, min_score: float = 0.5, min_common: int = 4) -> bool:
    """Whether two body keypoint sets are one person found twice (e.g. by a tracked crop and by
    the detector).

    Compares the points that *both* sets see (score >= ``min_score``, inside the image): their
    median distance must be below ``max_distance`` x the body size (the larger extent of either
    body's seen points). Points a model only guesses (legs below the image, occluded arms)
    differ a lot between two crops of one person, so comparing all points would keep such
    duplicates. With fewer than ``min_common`` points seen by both, all points are compared."""
    n = min(len(a), len(b))
    pa, pb = a.xy[:n], b.xy[:n]

    def seen(kp: Keypoints, p: np.ndarray) -> np.ndarray:
        return ((kp.score[:n] >= min_score) & (p[:, 0] >= 0) & (p[:, 0] < width)
                & (p[:, 1] >= 0) & (p[:, 1] < height))

    sa, sb = seen(a, pa), seen(b, pb)
    both = sa & sb
    if int(both.sum()) < min_common:
        both = np.ones(n, bool)
        sa = sb = both

    def extent(p: np.ndarray) -> float:
        return float(max(np.ptp(p[:, 0]), np.ptp(p[:, 1]))) if len(p) else 0.0

    size = max(extent(pa[sa]), extent(pb[sb]), 1.0)
    dist = float(np.median(np.linalg.norm(pa[both] - pb[both], axis=1)))
    return dist < max_distance * size


class KeypointPipeline:
    """Body / face / hand keypoints for every person in an RGB image (see module docstring)."""

    def __init__(self, config: Optional[KeypointConfig] = None) -> None:
        self.config = cfg = config or KeypointConfig()
        self.models: List[OnnxModel] = []
        loader = self._loader(cfg)

        def load(name: str, **kw) -> OnnxModel:
            self.models.append(loader(name, **kw))
            return self.models[-1]

        self._pose_det = body_mod.PoseDetector(load("pose_detection"))
        self._pose_lm = body_mod.PoseLandmarker(
            load("pose_landmark_full", drop_outputs=body_mod.is_segmentation_output,
                 max_batch=cfg.max_persons),
            cfg.max_persons, refine=cfg.heatmap_refinement)
        self._person_det: Optional[PersonDetector] = None
        if cfg.person_detector:
            self._person_det = PersonDetector(load("person_detection"),
                                              min_score=cfg.person_detector_confirm_score,
                                              iou_threshold=cfg.person_detector_nms_iou,
                                              tile_px=cfg.person_detector_tile_px)
        self._face_lm = self._face_det = self._face_recrop = None
        if cfg.enable_face:
            self._face_lm = face_mod.FaceLandmarker(load("face_landmark",
                                                         max_batch=cfg.max_persons),
                                                    cfg.max_persons)
            if cfg.face_recrop_detector or cfg.face_detector == "short":
                short = face_mod.FaceDetector(load("face_detection_short_range"), "short")
                self._face_recrop = short if cfg.face_recrop_detector else None
                if cfg.face_detector == "short":
                    self._face_det = short
            if cfg.face_detector == "full":
                self._face_det = face_mod.FaceDetector(load("face_detection_full_range"), "full")
        self._hand_lm = None
        if cfg.enable_hands:
            self._hand_lm = hands_mod.HandLandmarker(
                load("hand_landmark_full", max_batch=2 * cfg.max_persons), 2 * cfg.max_persons)
        self.provider: str = self._pose_lm.model.provider
        self.precision: str = self._precision_summary()
        self._pool: Optional[ThreadPoolExecutor] = None
        if cfg.parallel and usable_cores() >= 2:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keypoints")
        self.reset()

    @staticmethod
    def _loader(cfg: KeypointConfig):
        def load(name: str, **kw) -> OnnxModel:
            path = (resolve_model_path(f"{cfg.models_dir}/{name}.onnx") if cfg.models_dir
                    else resolve_model_path(name))
            precision = (cfg.precision if not cfg.precision_models
                         or name in cfg.precision_models else "fp32")
            return OnnxModel(path, providers=cfg.providers, threads=cfg.threads,
                             require_gpu=cfg.require_gpu, precision=precision, **kw)
        return load

    def _precision_summary(self) -> str:
        """'fp32' / 'fp16' when all models run so, else e.g. 'fp16: face_landmark; fp32: ...'."""
        by_precision: Dict[str, List[str]] = {}
        for m in self.models:
            by_precision.setdefault(m.precision, []).append(m.name)
        if len(by_precision) == 1:
            return next(iter(by_precision))
        return "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in sorted(by_precision.items()))

    def reset(self) -> None:
        """Forget all tracked crops (e.g. when time jumps backwards); the next frame runs the
        detector."""
        self._tracks: List[_Track] = []
        self._face_tracks: List[_FaceTrack] = []
        self._frame = 0
        self._since_detector = 0                   # processed frames since the detector ran
        self._last_stamp: Optional[float] = None
        self._detector_stamp: Optional[float] = None
        self._tile_turn = 0
        self._person_tile_turn = 0
        self._box_only: List[_BoxTrack] = []       # last frame's box-only people

    # ------------------------------------------------------------------ main entry
    def process(self, rgb: np.ndarray, stamp_s: Optional[float] = None) -> FrameResult:
        """Keypoints of every person in an HxWx3 uint8 RGB image (2D only).

        ``stamp_s``: the image's time in seconds (any clock); optional. With it the detector
        also runs when ``detector_period_s`` of stream time have passed since its last run
        (frames dropped by a slow consumer); without it, only processed frames count."""
        rgb = self._check_image(rgb)
        self._advance_clock(stamp_s)
        h, w = rgb.shape[:2]
        res = FrameResult()
        sampler = CropSampler(rgb)
        ms = res.timings_ms
        for stage in ("detect", "body", "face", "hands"):
            ms[stage] = 0.0

        # 1. on the worker thread (``parallel``), while the body model runs here: the detectors
        # when due, else the meshes of the tracked faces (their crops come from the previous
        # meshes; on detector frames they run here after the body model, which balances the
        # two threads)
        scan = self._scan_due()
        speculate = self._face_lm is not None
        det_job = self._start(self._detect, sampler, scan) if scan else None
        face_job = self._start(self._speculate_faces, sampler) if speculate and not scan else None
        res.detector_ran = bool(scan)
        try:
            # 2. body landmarks: tracked crops, then detections that are nobody found so far
            t = time.perf_counter()
            persons, tracks, lost = self._track_bodies(sampler, w, h)
            ms["body"] += _ms_since(t)
            if speculate and scan:
                face_job = _Job(self._speculate_faces, (sampler,), None)
            found = _Found()
            if det_job is not None:
                found, ms["detect"] = det_job.result()
            t = time.perf_counter()
            self._new_bodies(sampler, found.people, persons, tracks, w, h)
            ms["body"] += _ms_since(t)
            # someone tracked is lost and not found again by this frame's detections
            if (lost and len(persons) < len(self._tracks) and self.config.redetect_on_loss
                    and scan != "full"):
                t = time.perf_counter()
                more = self._detect(sampler, "full", faces=not res.detector_ran)
                if not more.boxes_ran:
                    more.boxes, more.regions = found.boxes, found.regions
                more.faces = found.faces or more.faces
                more.boxes_ran = found.boxes_ran or more.boxes_ran
                found = more
                res.detector_ran = True
                ms["detect"] += _ms_since(t)
                t = time.perf_counter()
                self._new_bodies(sampler, more.people, persons, tracks, w, h)
                ms["body"] += _ms_since(t)
            t = time.perf_counter()
            face_dets = found.faces
            if face_dets:
                face_dets = self._seed_from_faces(sampler, face_dets, persons, tracks, w, h)
            # whole-body boxes nobody accounts for: a landmark run each, else box-only people
            box_only, ages, boxed = (self._from_boxes(sampler, found, scan != "boxes",
                                                      persons, tracks, w, h)
                                     if found.boxes_ran else ([], [], set()))
            ms["body"] += _ms_since(t)

            # 3. faces
            if face_job is not None:
                speculated, ms["face"] = face_job.result()
                face_job = None
                t = time.perf_counter()
                self._faces(sampler, persons, tracks, res, face_dets, w, h, speculated)
                ms["face"] += _ms_since(t)

            # 4. hands
            t = time.perf_counter()
            if self._hand_lm is not None and persons:
                self._hands(sampler, persons, tracks)
            ms["hands"] += _ms_since(t)
        finally:
            for job in (face_job, det_job):       # never leave a job running into the next frame
                if job is not None:
                    job.wait()

        _apply_box_margins(persons, tracks, boxed, w, h)
        res.persons = persons + box_only
        self._box_only = [_BoxTrack(p.box, p.score, a) for p, a in zip(box_only, ages)]
        self._tracks = tracks
        self._frame += 1
        self._since_detector += 1
        return res

    def close(self) -> None:
        """Stop the worker thread (``parallel``); ``process`` then runs everything inline."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _start(self, fn, *args) -> "_Job":
        """Run ``fn(*args)`` on the worker thread, or here and now without one."""
        return _Job(fn, args, self._pool)

    @staticmethod
    def _check_image(rgb: np.ndarray) -> np.ndarray:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
        if rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise ValueError(f"empty image of shape {rgb.shape}")
        if rgb.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {rgb.dtype}")
        return rgb

    # ------------------------------------------------------------------ schedule
    def _advance_clock(self, stamp_s: Optional[float]) -> None:
        """Remember the frame's stamp; when time went backwards (a bag loop), the detector's
        period restarts."""
        if stamp_s is None:
            return
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp_s must be a finite number of seconds, got {stamp_s!r}")
        if self._last_stamp is not None and stamp < self._last_stamp:
            self._detector_stamp = None
        self._last_stamp = stamp

    def _scan_due(self) -> str:
        """'full' (nobody tracked), 'periodic' (interval or period reached), 'boxes' (box-only
        people to follow: the whole-body detector alone) or ''."""
        cfg = self.config
        if not self._tracks and not self._box_only:
            return "full"
        if self._since_detector >= cfg.detector_interval:
            return "periodic"
        if (cfg.detector_period_s > 0 and self._last_stamp is not None
                and self._detector_stamp is not None
                and self._last_stamp - self._detector_stamp >= cfg.detector_period_s):
            return "periodic"
        if self._box_only and self._person_det is not None:
            return "boxes"
        return ""

    def _detect(self, sampler: CropSampler, mode: str, faces: bool = True) -> "_Found":
        """The detectors of a scan: ``mode`` 'full' (every region), 'periodic' (the whole image
        plus one tile in turn, ``detector_tile_rotation``) or 'boxes' (the whole-body detector
        alone); face detections with ``faces``. The whole-body detector also scans the tiles
        holding last frame's box-only people, so that they are followed frame to frame."""
        cfg = self.config
        found = _Found()
        if mode != "boxes":
            self._since_detector = 0
            self._detector_stamp = self._last_stamp
            regions: List[Optional[RotatedRect]] = [None]
            if cfg.detector_tiles:
                tiles = tile_rects(sampler.width, sampler.height)
                if tiles and mode != "full" and cfg.detector_tile_rotation:
                    tiles = [tiles[self._tile_turn % len(tiles)]]
                    self._tile_turn += 1
                regions += tiles
            found.people = self._pose_det.ssd.detect(sampler, rois=regions,
                                                     min_score=cfg.detector_min_score)
            if faces and self._face_det is not None:
                found.faces = self._face_det.detect(sampler)
        if self._person_det is not None:
            found.regions = self._body_regions(sampler, mode)
            found.boxes = self._person_det.detect(sampler, found.regions)
            found.boxes_ran = True
        return found

    def _body_regions(self, sampler: CropSampler, mode: str) -> List[RotatedRect]:
        """Regions for the whole-body detector: the whole image, plus its tiles (all of them on
        'full' scans, else one in turn)."""
        w, h = sampler.width, sampler.height
        tiles = self._person_det.tiles(w, h)
        if mode != "full" and tiles:
            tiles = [tiles[self._person_tile_turn % len(tiles)]]
            self._person_tile_turn += 1
        return [whole_image_rect(w, h)] + tiles

    # ------------------------------------------------------------------ bodies
    def _track_bodies(self, sampler: CropSampler, w: int, h: int
                      ) -> Tuple[List[Person], List[_Track], int]:
        """Landmarks on the tracked crops (one batch; lost ones retried on a wider crop).
        Returns the people found, their tracks and how many tracked people were lost."""
        cfg = self.config
        persons: List[Person] = []
        tracks: List[_Track] = []
        if not self._tracks:
            return persons, tracks, 0
        cands = list(self._tracks)
        nan = [float("nan")] * len(cands)
        status = self._add_bodies(sampler, cands, nan, len(cands), persons, tracks, w, h)
        lost = [c for c, s in zip(cands, status) if s == ABSENT]
        if lost and cfg.lost_retry_scale > 1.0:
            retry = [_Track(_scaled(c.roi, cfg.lost_retry_scale), c.face_roi, c.hand_rois,
                            c.box_margin) for c in lost]
            status = self._add_bodies(sampler, retry, nan[:len(retry)], len(retry), persons,
                                      tracks, w, h)
            lost = [c for c, s in zip(retry, status) if s == ABSENT]
        return persons, tracks, len(lost)

    def _new_bodies(self, sampler: CropSampler, dets: Sequence[Detection],
                    persons: List[Person], tracks: List[_Track], w: int, h: int) -> None:
        """Landmarks for the detections that are none of ``persons``.

        A detection is a person already found when its box centre (the detector finds faces)
        lies in that person's head region, or when its crop overlaps the person's next crop by
        IoU > ``track_overlap_iou``. A person found through their head whose crop this frame
        differs in size from the detection's by more than ``reanchor_ratio`` is run again from
        the detection (``_reanchor``): crops derived from landmarks follow a change of size
        slowly (a person walking towards or away from the camera)."""
        cfg = self.config
        if not dets:
            return
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        taken = [_rect_bounds(p.next_roi) for p in persons if p.next_roi is not None]
        cands: List[_Track] = []
        scores: List[float] = []
        redo: Dict[int, Tuple[RotatedRect, float]] = {}
        for d in dets:
            roi = body_mod.roi_from_detection(d)
            if not roi.width >= cfg.min_crop_px:
                continue
            owner = next((k for k, head in enumerate(heads)
                          if face_mod.overlaps_any(d.box, [head])), None)
            if owner is not None:
                used = persons[owner].roi
                if (cfg.reanchor_ratio > 0 and used is not None and owner not in redo
                        and _size_ratio(roi, used) > cfg.reanchor_ratio):
                    redo[owner] = (roi, d.score)
                continue
            b = _rect_bounds(roi)
            if taken and box_iou(b, np.stack(taken)).max() > cfg.track_overlap_iou:
                continue
            if len(cands) + len(persons) >= cfg.max_persons:
                continue
            cands.append(_Track(roi))
            scores.append(d.score)
            taken.append(b)
        if redo:
            self._reanchor(sampler, redo, persons, tracks, w, h)
        self._add_bodies(sampler, cands, scores, 0, persons, tracks, w, h)

    def _reanchor(self, sampler: CropSampler, redo: Dict[int, Tuple[RotatedRect, float]],
                  persons: List[Person], tracks: List[_Track], w: int, h: int) -> None:
        """Replace people ``k`` of ``redo`` by their landmarks from the detection's crop (refined
        once like any new crop); kept as they are where the model finds nobody there."""
        cfg = self.config
        ks = list(redo)
        lm = self._run_refined(sampler, [redo[k][0] for k in ks], 0)
        for j, k in enumerate(ks):
            if lm.flag[j] < cfg.min_pose_presence:
                continue
            made = self._make_person(lm, j, redo[k][1], w, h)
            if made is None:
                continue
            old = tracks[k]
            persons[k] = made
            tracks[k] = _Track(made.next_roi, old.face_roi, old.hand_rois, old.box_margin)

    def _run_refined(self, sampler: CropSampler, rois: Sequence[RotatedRect],
                     first_new: int) -> "body_mod.PoseLandmarks":
        """Landmarks on ``rois``; those from index ``first_new`` on are new crops, run a second
        time on their landmark-derived crop when ``refine_new_crops``."""
        cfg = self.config
        lm = self._pose_lm.run(sampler, rois)
        if cfg.refine_new_crops and first_new < len(rois):
            idx = [i for i in range(first_new, len(rois)) if lm.flag[i] >= cfg.min_pose_presence]
            if idx:
                again = self._pose_lm.run(sampler, [body_mod.roi_from_landmarks(lm.xy[i])
                                                    for i in idx])
                for j, i in enumerate(idx):
                    if again.flag[j] >= cfg.min_pose_presence:
                        lm.replace(i, again, j)
        return lm

    def _make_person(self, lm: "body_mod.PoseLandmarks", i: int, det_score: float,
                     w: int, h: int) -> Optional[Person]:
        """Entry ``i`` of a landmark batch as a Person (None when its next crop is unusable)."""
        xy = lm.xy[i]
        nxt = body_mod.roi_from_landmarks(xy)
        if not (math.isfinite(nxt.cx) and math.isfinite(nxt.cy) and math.isfinite(nxt.width)
                and nxt.width >= self.config.min_crop_px):
            return None
        kp = Keypoints("blazepose33", xy[:body_mod.NUM_BODY],
                       lm.visibility[i, :body_mod.NUM_BODY])
        return Person(body=kp, box=body_mod.visible_box(xy, lm.visibility[i], w, h),
                      score=float(lm.flag[i]), world=lm.world[i], roi=lm.rois[i],
                      next_roi=nxt, detector_score=det_score)

    def _add_bodies(self, sampler: CropSampler, cands: List[_Track], det_scores: List[float],
                    first_new: int, persons: List[Person], tracks: List[_Track],
                    w: int, h: int) -> List[str]:
        """Run the landmark model on candidate crops and append the people found to
        ``persons``/``tracks`` (skipping duplicates of people already there, ``same_person``).
        Candidates from index ``first_new`` on are new crops (refined once when
        ``refine_new_crops``). Returns, per candidate, FOUND, DUPLICATE or ABSENT (pose flag
        too low, or an unusable crop)."""
        cfg = self.config
        if not cands:
            return []
        lm = self._run_refined(sampler, [c.roi for c in cands], first_new)
        status = [ABSENT] * len(cands)
        accepted: Dict[int, Tuple[Person, _Track]] = {}
        room = cfg.max_persons - len(persons)
        # strongest first, so that duplicates (two crops on one person) keep the better one
        for i in sorted(range(len(cands)), key=lambda i: -float(lm.flag[i])):
            if lm.flag[i] < cfg.min_pose_presence or len(accepted) >= room:
                continue
            person = self._make_person(lm, i, det_scores[i], w, h)
            if person is None:
                continue
            if any(same_person(person.body, p.body, w, h, cfg.duplicate_distance)
                   for p in persons + [a[0] for a in accepted.values()]):
                status[i] = DUPLICATE
                continue
            accepted[i] = (person, _Track(person.next_roi, cands[i].face_roi,
                                          dict(cands[i].hand_rois), cands[i].box_margin))
            status[i] = FOUND
        for i in sorted(accepted):            # keep the candidates' (tracks') order
            persons.append(accepted[i][0])
            tracks.append(accepted[i][1])
        return status

    def _seed_from_faces(self, sampler: CropSampler, faces: List[Detection],
                         persons: List[Person], tracks: List[_Track], w: int, h: int
                         ) -> List[Detection]:
        """Look for a body below each detected face that no person accounts for (the person
        detector misses some people); returns the faces still without a body."""
        cfg = self.config
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        lone = [d for d in faces if not face_mod.overlaps_any(d.box, heads)]
        room = cfg.max_persons - len(persons)
        if not lone or room <= 0 or not cfg.seed_bodies_from_faces:
            return lone
        seeds = lone[:room]
        cands = [_Track(body_mod.roi_from_face(d.box, d.keypoints[0], d.keypoints[1]))
                 for d in seeds]
        self._add_bodies(sampler, cands, [d.score for d in seeds], 0, persons, tracks, w, h)
        heads = [face_mod.roi_from_pose(p.body.xy) for p in persons]
        return [d for d in lone if not face_mod.overlaps_any(d.box, heads)]

    def _box_owner(self, box: np.ndarray, persons: Sequence[Person]) -> Tuple[Optional[int], bool]:
        """``(index of the person a whole-body detector box shows or None, whether the box
        covers that person)``. The box shows a person when IoU of the boxes >=
        ``person_box_match_iou``; when the person's (landmarks') box lies inside the detector's,
        centred alike (the landmarks' box misses clothes, hair, turned-away parts): the box
        covers the person; when the detector's box lies inside the person's, centred alike and
        sharing its top (a detector box cut by something in front of the person's legs): it
        shows the person but does not cover them."""
        if not persons:
            return None, False
        boxes = np.stack([p.box for p in persons]).astype(np.float32)
        iou = box_iou(box, boxes)
        k = int(np.argmax(iou))
        if iou[k] >= self.config.person_box_match_iou:
            return k, True
        for k in np.argsort(-iou):
            if _nested(boxes[k], box):
                return int(k), True
        for k in np.argsort(-iou):
            pb = boxes[k]
            if _nested(box, pb) and abs(box[1] - pb[1]) <= 0.15 * (pb[3] - pb[1]):
                return int(k), False
        return None, False

    def _from_boxes(self, sampler: CropSampler, found: "_Found", check: bool,
                    persons: List[Person], tracks: List[_Track], w: int, h: int
                    ) -> Tuple[List[Person], List[int], set]:
        """Whole-body detector boxes that no person accounts for get a landmark run (crop
        around the box, refined once) while there is room (``max_persons``); those still
        without a person become box-only people (``publish_box_only``). A person a box shows
        takes the box (``_take_box``). Weak boxes need the landmark model's confirmation
        (``_confirmed``, on detector scans: ``check``) unless they continue a box-only person of
        the last frame. Last frame's box-only people that no box shows again and whose place no
        tile scanned this frame are held (``_held_box_only``). Returns the box-only people, how
        many frames each has been held, and the indices of the people that took a box."""
        cfg = self.config
        pending = []
        boxed = set()
        for d in found.boxes:
            k, covers = self._box_owner(d.box, persons)
            if k is None:
                pending.append(d)
            elif covers and k not in boxed:
                tracks[k].box_margin = _take_box(persons[k], d.box)
                boxed.add(k)
        strong = [d for d in pending if d.score >= cfg.person_detector_min_score]
        weak = [d for d in pending if d.score < cfg.person_detector_min_score]
        tried = (strong + weak)[:max(0, cfg.max_persons - len(persons))]
        tried = [d for d in tried if body_mod.roi_from_box(d.box).width >= cfg.min_crop_px]
        if tried:
            cands = [_Track(body_mod.roi_from_box(d.box)) for d in tried]
            self._add_bodies(sampler, cands, [d.score for d in tried], 0, persons, tracks, w, h)
        out: List[Person] = []
        unchecked = []
        for d in pending:
            k, covers = self._box_owner(d.box, persons)
            if k is not None:                   # found by the landmark run on its box
                if covers and k not in boxed:
                    tracks[k].box_margin = _take_box(persons[k], d.box)
                    boxed.add(k)
            elif d.score >= cfg.person_detector_min_score or self._continues_box_only(d.box):
                out.append(box_only_person(d))
            elif check and not any(d is t for t in tried):
                unchecked.append(d)
        out += [box_only_person(d) for d in self._confirmed(sampler, unchecked, persons + out,
                                                             w, h)]
        ages = [0] * len(out)
        for p, age in self._held_box_only(found.regions, persons + out, w, h):
            out.append(p)
            ages.append(age)
        if not cfg.publish_box_only:
            return [], [], boxed
        return out[:cfg.max_box_only], ages[:cfg.max_box_only], boxed

    def _continues_box_only(self, box: np.ndarray) -> bool:
        """The box shows one of last frame's box-only people (IoU >= 0.5)."""
        return bool(self._box_only) and box_iou(
            box, np.stack([t.box for t in self._box_only])).max() >= 0.5

    def _held_box_only(self, regions: Sequence[RotatedRect], shown: Sequence[Person], w: int,
                       h: int) -> List[Tuple[Person, int]]:
        """Last frame's box-only people that nobody shown this frame overlaps (IoU >= 0.3) and
        whose box centre lies in no tile scanned this frame (people too small for the
        whole-image pass wait for their tile's turn): kept with their last box, for at most as
        many frames as there are tiles. Returns (person, frames held)."""
        if not self._box_only:
            return []
        tiles = regions[1:]
        n_tiles = len(self._person_det.tiles(w, h)) if self._person_det is not None else 0
        shown_boxes = np.stack([p.box for p in shown]) if shown else np.zeros((0, 4))
        held = []
        for t in self._box_only:
            if t.age + 1 > n_tiles:
                continue
            if len(shown_boxes) and box_iou(t.box, shown_boxes).max() >= 0.3:
                continue
            cx, cy = (t.box[0] + t.box[2]) / 2.0, (t.box[1] + t.box[3]) / 2.0
            if any(abs(cx - r.cx) <= r.width / 2 and abs(cy - r.cy) <= r.height / 2
                   for r in tiles):
                continue                          # its tile ran and did not find it
            held.append((box_only_person(Detection(t.box, t.score,
                                                   np.zeros((0, 2), np.float32))), t.age + 1))
        return held

    def _confirmed(self, sampler: CropSampler, weak: Sequence[Detection],
                   known: Sequence[Person], w: int, h: int) -> List[Detection]:
        """The weak boxes (best first, at most ``max_box_checks``) in which the landmark model
        finds a person (pose flag >= ``min_pose_presence``) whose landmarks' box agrees with the
        detector's and who is none of the ``known`` people."""
        cfg = self.config
        weak = [d for d in weak if body_mod.roi_from_box(d.box).width >= cfg.min_crop_px]
        weak = weak[:cfg.max_box_checks]
        if not weak:
            return []
        lm = self._pose_lm.run(sampler, [body_mod.roi_from_box(d.box) for d in weak])
        out = []
        for i, d in enumerate(weak):
            if lm.flag[i] < cfg.min_pose_presence:
                continue
            seen = self._make_person(lm, i, d.score, w, h)
            if seen is None:
                continue
            agree = box_iou(d.box, seen.box[None])[0] >= cfg.person_box_match_iou or \
                _nested(seen.box, d.box) or _nested(d.box, seen.box)
            dup = any(not p.box_only and same_person(seen.body, p.body, w, h,
                                                     cfg.duplicate_distance) for p in known)
            if agree and not dup:
                out.append(d)
        return out

    # ------------------------------------------------------------------ faces
    def _speculate_faces(self, sampler: CropSampler
                         ) -> Tuple[List[RotatedRect], Optional[face_mod.FaceMeshes]]:
        """Meshes on the crops tracked from the previous frame's meshes (bodies' faces and faces
        without a body), before this frame's bodies are known: ``_faces`` uses those whose
        crop still agrees with the body's head."""
        rois = [t.face_roi for t in self._tracks if t.face_roi is not None]
        rois += [ft.roi for ft in self._face_tracks]
        return rois, (self._face_lm.run(sampler, rois) if rois else None)

    def _faces(self, sampler: CropSampler, persons: List[Person], tracks: List[_Track],
               res: FrameResult, face_dets: Sequence[Detection], w: int, h: int,
               speculated: Tuple[List[RotatedRect], Optional[face_mod.FaceMeshes]] = ([], None)
               ) -> None:
        """Meshes for each body's face (tracked crop, else a new crop from the head) and for
        faces without a body (tracked, or new from the face detector). ``speculated``: meshes
        already run on some of these crops (``_speculate_faces``; matched by identity)."""
        cfg = self.config
        rois, fresh, owner = [], [], []
        for i, p in enumerate(persons):
            roi, tracked = face_mod.face_roi_for_body(p.body.xy, tracks[i].face_roi, sampler,
                                                      self._face_recrop)
            if roi.width >= 2:
                rois.append(roi), fresh.append(not tracked), owner.append(i)
        for ft in self._face_tracks:
            if not face_mod.overlaps_any(_rect_bounds(ft.roi), rois):
                rois.append(ft.roi), fresh.append(False), owner.append(-1)
        for d in face_dets:
            if not face_mod.overlaps_any(d.box, rois):
                rois.append(face_mod.roi_from_detection(d)), fresh.append(True), owner.append(-1)
        if not rois:
            self._face_tracks = []
            return
        meshes = self._meshes(sampler, rois, speculated)
        thr = cfg.min_face_presence
        # a body's tracked crop lost the face: start again from the head this frame
        retry = [k for k in range(len(rois)) if owner[k] >= 0 and not fresh[k]
                 and meshes.presence[k] < thr]
        if retry:
            again = self._face_lm.run(sampler, [face_mod.face_roi_for_body(
                persons[owner[k]].body.xy, None, sampler, self._face_recrop)[0] for k in retry])
            for j, k in enumerate(retry):
                meshes.replace(k, again, j)
                fresh[k] = True
        if cfg.refine_new_crops:
            redo = [k for k in range(len(rois)) if fresh[k] and meshes.presence[k] >= thr]
            if redo:
                again = self._face_lm.run(sampler, [face_mod.roi_from_mesh(meshes.xyz[k, :, :2])
                                                    for k in redo])
                for j, k in enumerate(redo):
                    if again.presence[j] >= thr:
                        meshes.replace(k, again, j)
        face_tracks: List[_FaceTrack] = []
        kept_boxes: List[np.ndarray] = []
        for k in range(len(rois)):
            i = owner[k]
            if meshes.presence[k] < thr:
                if i >= 0:
                    tracks[i].face_roi = None
                continue
            f = meshes.face(k, w, h)
            if kept_boxes and box_iou(f.box, np.stack(kept_boxes)).max() > 0.5:
                continue                      # a face-only track that is a body's face now
            kept_boxes.append(f.box)
            nxt = face_mod.roi_from_mesh(meshes.xyz[k, :, :2])
            if i >= 0:
                f.person_index, f.associated = i, True
                persons[i].face = f
                tracks[i].face_roi = nxt
            else:
                res.faces_without_body.append(f)
                face_tracks.append(_FaceTrack(nxt))
        self._face_tracks = face_tracks

    def _meshes(self, sampler: CropSampler, rois: List[RotatedRect],
                speculated: Tuple[List[RotatedRect], Optional[face_mod.FaceMeshes]]
                ) -> face_mod.FaceMeshes:
        """Meshes on ``rois``: taken from ``speculated`` where it ran on the same crop object,
        run now for the others."""
        done_rois, done = speculated
        where = {id(r): j for j, r in enumerate(done_rois)} if done is not None else {}
        todo = [k for k, r in enumerate(rois) if id(r) not in where]
        if len(todo) == len(rois):
            return self._face_lm.run(sampler, rois)
        meshes = face_mod.FaceMeshes(np.empty((len(rois), face_mod.NUM_POINTS, 3), np.float32),
                                     np.zeros(len(rois), np.float32), list(rois))
        for k, r in enumerate(rois):
            if id(r) in where:
                meshes.replace(k, done, where[id(r)])
        if todo:
            now = self._face_lm.run(sampler, [rois[k] for k in todo])
            for j, k in enumerate(todo):
                meshes.replace(k, now, j)
        return meshes

    def _hands(self, sampler: CropSampler, persons: List[Person], tracks: List[_Track]) -> None:
        cfg = self.config
        jobs = []
        for i, p in enumerate(persons):
            for side, roi, _tracked in hands_mod.hand_crops_for_body(
                    p.body.xy, p.body.score, tracks[i].hand_rois):
                jobs.append((i, side, roi))
            tracks[i].hand_rois = {}
        if not jobs:
            return
        out = self._hand_lm.run(sampler, [r for _, _, r in jobs])
        for k, (i, side, _roi) in enumerate(jobs):
            if out.flag[k] < cfg.min_hand_presence:
                continue
            persons[i].hands.append(hands_mod.make_hand(out, k, side))
            tracks[i].hand_rois[side] = hands_mod.roi_from_landmarks(out.xyz[k, :, :2])


def box_only_person(det: Detection, layout: str = "blazepose33") -> Person:
    """A person known only by a whole-body detector box: every keypoint invalid (NaN, score
    0); the box and the detector's score stand for the person."""
    n = get_layout(layout).size
    kp = Keypoints(layout, np.full((n, 2), np.nan, np.float32), np.zeros(n, np.float32))
    return Person(body=kp, box=np.asarray(det.box, np.float32).copy(), score=float(det.score),
                  detector_score=float(det.score), found_by=FOUND_BY_BOX)


def _nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """``inner`` lies 80 % inside ``outer``, their centres within a quarter of ``outer``'s
    width, and ``inner`` is at least 30 % as tall."""
    w, h = outer[2] - outer[0], outer[3] - outer[1]
    return bool(covered_fraction(inner, outer[None])[0] >= 0.8
                and abs((inner[0] + inner[2]) - (outer[0] + outer[2])) / 2.0 <= 0.25 * w
                and inner[3] - inner[1] >= 0.3 * h)


def _take_box(person: Person, det_box: np.ndarray) -> np.ndarray:
    """The whole-body detector's box becomes the person's box (it covers the visible person;
    the landmarks' box misses clothes and hair, and takes in guessed limbs behind things);
    returns the offset to carry to the next frames (``_Track.box_margin``)."""
    lm = person.box.astype(np.float64)
    person.box = np.asarray(det_box, np.float32).copy()
    return (np.asarray(det_box, np.float64) - lm) / max(lm[3] - lm[1], 1.0)


def _apply_box_margins(persons: Sequence[Person], tracks: Sequence[_Track], boxed: set,
                       w: int, h: int) -> None:
    """People without a detector box this frame (not in ``boxed``) keep the offset the last
    one had from their landmarks' box."""
    for k, (p, t) in enumerate(zip(persons, tracks)):
        if t.box_margin is None or k in boxed:
            continue
        lm = p.box.astype(np.float64)
        b = lm + t.box_margin * max(lm[3] - lm[1], 1.0)
        b[[0, 2]] = np.clip(b[[0, 2]], 0, w - 1)
        b[[1, 3]] = np.clip(b[[1, 3]], 0, h - 1)
        p.box = b.astype(np.float32)


@dataclass
class _BoxTrack:
    """A box-only person carried to the next frame."""

    box: np.ndarray
    score: float
    age: int = 0          # frames held without being seen again (``_held_box_only``)


@dataclass
class _Found:
    """What one scan's detectors found."""

    people: List[Detection] = field(default_factory=list)   # BlazePose (face-anchored)
    faces: List[Detection] = field(default_factory=list)    # faces (BlazeFace)
    boxes: List[Detection] = field(default_factory=list)    # whole-body boxes
    boxes_ran: bool = False                                  # the whole-body detector ran
    regions: List[RotatedRect] = field(default_factory=list)  # where it ran


def _ms_since(t: float) -> float:
    return (time.perf_counter() - t) * 1e3


class _Job:
    """``fn(*args)`` run on ``pool``'s thread (or at once without a pool); ``result()`` gives
    ``(value, milliseconds the call took)`` and re-raises its exception."""

    def __init__(self, fn, args, pool: Optional[ThreadPoolExecutor]) -> None:
        def timed():
            t = time.perf_counter()
            return fn(*args), _ms_since(t)
        if pool is None:
            self._future = None
            try:
                self._value, self._error = timed(), None
            except Exception as exc:  # re-raised by result(), as a future would
                self._value, self._error = None, exc
        else:
            self._future = pool.submit(timed)

    def result(self):
        if self._future is not None:
            return self._future.result()
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self) -> None:
        """Wait for the call to end (its outcome is not needed any more)."""
        if self._future is not None:
            futures_wait([self._future])
