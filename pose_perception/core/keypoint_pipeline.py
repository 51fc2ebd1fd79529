"""The keypoint stage: RGB image in, 2D body (+ face, + hands) keypoints of every person out.

``KeypointPipeline.process(rgb, stamp_s=None)`` runs per frame: the detectors when a scan is due
(``_scan_due``: nobody tracked, every ``detector_interval`` frames or ``detector_period_s`` of
stream time, or box-only people to follow), the body stage (``body_stage``: tracked crops, new
detections, whole-body boxes, box-only people), the face stage (``face_stage``) and the hands.
The rules and their reasons are in README.md ("How the keypoints are found").

The surprising part: with ``parallel`` (2+ usable cores) a worker thread runs the meshes on the
crops tracked from the last frame's meshes (with their eyes, and the caller's ``on_faces``: 3D
lifting; on frames with detectors, those follow the meshes there and ``on_faces`` runs on the
calling thread after the body model) *while* the body model runs; the face stage keeps the
meshes whose crop still agrees with the body's head. Timings per stage (ms) go into
``FrameResult.timings_ms`` wherever the stage ran (they may add up to more than the frame).
Hands get gesture probabilities (``Hand.gesture``) where the gesture models are provisioned
(``enable_hand_gestures``). ROS-free.
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import body as body_mod
from . import face as face_mod
from . import hands as hands_mod
from .body_stage import BodyStage, BodyTrack
from .crops import CropSampler
from .face_stage import FacesFn, FaceStage
from .hand_gestures import CLASSIFIER as GESTURE_CLASSIFIER
from .hand_gestures import EMBEDDER as GESTURE_EMBEDDER
from .hand_gestures import HandGestureClassifier
from .inference import ModelLoadError, OnnxModel, resolve_model_path, usable_cores
from .iris import IrisLandmarker
from .keypoint_config import BODY_LANDMARK_MODEL, HAND_LANDMARK_MODEL, KeypointConfig
from .person_detector import PersonDetector, whole_image_rect
from .person_fusion import BoxTrack, apply_box_margin, held_face_box_only
from .ssd import Detection, tile_rects
from .types import FrameResult, Person, RotatedRect
from .worker import Job, timed

__all__ = ["KeypointConfig", "KeypointPipeline"]

LOG = logging.getLogger(__name__)


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
            load(BODY_LANDMARK_MODEL, drop_outputs=body_mod.is_segmentation_output,
                 max_batch=cfg.max_persons),
            cfg.max_persons, refine=cfg.heatmap_refinement)
        self._bodies = BodyStage(self._pose_lm, cfg)
        self._person_det: Optional[PersonDetector] = None
        if cfg.person_detector:
            self._person_det = PersonDetector(load("person_detection"),
                                              min_score=cfg.person_detector_confirm_score,
                                              iou_threshold=cfg.person_detector_nms_iou,
                                              tile_px=cfg.person_detector_tile_px)
        self._faces: Optional[FaceStage] = None
        self._face_det = None
        if cfg.enable_face:
            face_lm = face_mod.FaceLandmarker(load("face_landmark", max_batch=cfg.max_persons),
                                              cfg.max_persons)
            recrop = None
            if cfg.face_recrop_detector or cfg.face_detector == "short":
                short = face_mod.FaceDetector(load("face_detection_short_range"), "short")
                recrop = short if cfg.face_recrop_detector else None
                if cfg.face_detector == "short":
                    self._face_det = short
            if cfg.face_detector == "full":
                self._face_det = face_mod.FaceDetector(load("face_detection_full_range"), "full")
            iris = (IrisLandmarker(load("iris_landmark")) if cfg.enable_gaze else None)
            self._faces = FaceStage(face_lm, recrop, cfg.min_face_presence, cfg.refine_new_crops,
                                    iris, cfg.iris_min_eye_px)
        self._hand_lm = None
        self._gestures: Optional[HandGestureClassifier] = None
        self.gesture_note = ""                    # why hand gestures are off, when they are
        if cfg.enable_hands:
            self._hand_lm = hands_mod.HandLandmarker(
                load(HAND_LANDMARK_MODEL, max_batch=2 * cfg.max_persons), 2 * cfg.max_persons)
            if cfg.enable_hand_gestures:
                self._gestures = self._load_gestures(loader)
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
            return OnnxModel(path, providers=cfg.providers, threads=cfg.model_threads(name),
                             require_gpu=cfg.require_gpu, precision=precision, **kw)
        return load

    def _load_gestures(self, loader) -> Optional[HandGestureClassifier]:
        """The gesture models, or None with a warning (``gesture_note``) where they are missing
        or unusable: the hands still run."""
        batch = 2 * self.config.max_persons
        try:
            models = [loader(name, max_batch=batch)
                      for name in (GESTURE_EMBEDDER, GESTURE_CLASSIFIER)]
            gestures = HandGestureClassifier(*models)
        except (FileNotFoundError, ModelLoadError) as e:
            self.gesture_note = f"hand gestures off: {e}"
            LOG.warning("%s", self.gesture_note)
            return None
        self.models.extend(models)
        return gestures

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
        self._tracks: List[BodyTrack] = []
        if self._faces is not None:
            self._faces.face_tracks = []
        self._frame = 0
        self._since_detector = 0                   # processed frames since the detector ran
        self._last_stamp: Optional[float] = None
        self._frame_dt: Optional[float] = None     # stream time between frames (average), s
        self._detector_stamp: Optional[float] = None
        self._tile_turn = 0
        self._person_tile_turn = 0
        self._scan_rest: List[str] = []            # parts a periodic scan left to next frames
        self._rest_at = 0                          # ... the next one due at this _since_detector
        self._part_gap = 0                         # frames between two of those parts
        self._box_only: List[BoxTrack] = []        # last frame's box-only people

    # ------------------------------------------------------------------ main entry
    def process(self, rgb: np.ndarray, stamp_s: Optional[float] = None,
                on_faces: Optional[FacesFn] = None) -> FrameResult:
        """Keypoints of every person in an HxWx3 uint8 RGB image (2D only).

        ``stamp_s``: the image's time in seconds (any clock); optional. With it the detector
        also runs when ``detector_period_s`` of stream time have passed since its last run
        (frames dropped by a slow consumer); without it, only processed frames count.
        ``on_faces``: called with the faces whose meshes ran on their tracked crops as soon as
        they are known, on the worker thread while the body model runs (``parallel``; on
        frames with detectors, on this thread after the body model while the detectors run):
        work on them (3D lifting) then costs the frame no time of its own. The result holds
        those very Face objects wherever it keeps them."""
        rgb = self._check_image(rgb)
        self._advance_clock(stamp_s)
        h, w = rgb.shape[:2]
        res = FrameResult()
        sampler = CropSampler(rgb)
        ms = res.timings_ms
        for stage in ("detect", "body", "face", "hands"):
            ms[stage] = 0.0

        # 1. on the worker thread (``parallel``), while the body model runs here: first the
        # meshes of the tracked faces (their crops come from the previous meshes), then the
        # detectors when due. Without detectors the faces are lifted there too (``on_faces``),
        # beside the body model; with them, here after the body model, beside the detectors
        # (the worker has the longer chain then: the frame ends ~1 ms sooner, README)
        scan = self._scan_due()
        speculate = self._faces is not None
        face_job = (self._start(self._faces.speculate, sampler, self._tracks,
                                None if scan else on_faces) if speculate else None)
        det_job = self._start(self._detect, sampler, scan) if scan else None
        res.detector_ran = bool(scan)
        try:
            # 2. body landmarks: tracked crops, then detections that are nobody found so far
            with timed(ms, "body"):
                persons, tracks, lost = self._bodies.track(sampler, self._tracks, w, h)
            if scan and face_job is not None and on_faces is not None:
                with timed(ms, "face"):
                    on_faces([f for f in face_job.result()[0].faces if f is not None])
            found = _Found()
            if det_job is not None:
                found, ms["detect"] = det_job.result()
            # box-only people found through a face: BlazePose's detector finding the face again
            # continues them; held between its runs (``_face_people``)
            faced = [t for t in self._box_only if t.face is not None]
            with timed(ms, "body"):
                face_only, faced = self._face_people(found, scan, faced, persons, w, h)
                face_only += self._bodies.add_detections(sampler, found.people, persons,
                                                         tracks, w, h)
            # someone tracked is lost and not found again by this frame's detections
            if (lost and len(persons) < len(self._tracks) and self.config.redetect_on_loss
                    and scan != "full"):
                found, more, faced = self._redetect(sampler, found, faced, persons, tracks, res,
                                                    w, h)
                face_only += more
            held = held_face_box_only(faced, self._face_hold_frames(w, h))
            face_only += [(p, d) for p, d, _ in held]
            with timed(ms, "body"):
                face_dets = found.faces
                if face_dets:
                    face_dets = self._bodies.seed_from_faces(sampler, face_dets, persons,
                                                             tracks, w, h)
                # whole-body boxes nobody accounts for: a landmark run each, else box-only
                box_only, ages, boxed = ([], [], set())
                if found.boxes_ran:
                    box_only, ages, boxed = self._bodies.from_boxes(
                        sampler, found.boxes, found.regions[1:], scan != "boxes",
                        self._box_only, len(self._person_det.tiles(w, h)), persons, tracks, w, h,
                        face_only)
                elif self.config.publish_box_only:
                    box_only = self._bodies.unclaimed_faces(face_only, persons)
                    box_only = box_only[:self.config.max_box_only]
                    ages = [0] * len(box_only)

            # 3. faces
            if face_job is not None:
                speculated, took = face_job.result()
                ms["face"] += took
                face_job = None
                with timed(ms, "face"):
                    self._faces.run(sampler, persons, tracks, res, face_dets, w, h, speculated)

            # 4. hands
            with timed(ms, "hands"):
                if self._hand_lm is not None and persons:
                    self._hands(sampler, persons, tracks)
        finally:
            for job in (face_job, det_job):       # never leave a job running into the next frame
                if job is not None:
                    job.wait()

        for k, (p, t) in enumerate(zip(persons, tracks)):
            if t.box_margin is not None and k not in boxed:
                apply_box_margin(p, t.box_margin, w, h)
        res.persons = persons + box_only
        # a box-only person found through a face carries that face (and the frames held)
        carried = {id(p): (d.box, 0) for p, d in face_only}
        carried.update({id(p): (d.box, a) for p, d, a in held})
        self._box_only = []
        for p, a in zip(box_only, ages):
            face, a = carried.get(id(p), (None, a))
            self._box_only.append(BoxTrack(p.box, p.score, a, face))
        self._tracks = tracks
        self._frame += 1
        self._since_detector += 1
        return res

    def _face_people(self, found: "_Found", scan: str, faced: List[BoxTrack],
                     persons: List[Person], w: int, h: int
                     ) -> Tuple[List[Tuple[Person, Detection]], List[BoxTrack]]:
        """Last frame's box-only people found through a face (``faced``) on a frame where
        BlazePose's detector ran (``scan`` 'full' or 'periodic'): those whose face it finds
        again are continued (``BodyStage.refind_faces``; their detections leave
        ``found.people``), the others are dropped unless their face lies in no tile it scanned
        (``BodyStage.refind_faces``). Returns the people continued and the tracks still to hold
        (all of ``faced`` on frames without that detector)."""
        if scan not in ("full", "periodic"):
            return [], faced
        if not self.config.face_box_only:
            return [], []
        again, found.people, unseen = self._bodies.refind_faces(
            found.people, faced, found.people_tiles, persons, w, h)
        return again, unseen

    def _face_hold_frames(self, w: int, h: int) -> int:
        """At most this many frames a box-only person found through a face is held without
        BlazePose's detector finding the face again: until every tile of its periodic scans
        (one in turn, ``detector_tile_rotation``) has looked, one scan every
        ``detector_interval`` frames."""
        cfg = self.config
        tiles = len(tile_rects(w, h)) if cfg.detector_tiles and cfg.detector_tile_rotation else 0
        return cfg.detector_interval * max(1, tiles)

    def _redetect(self, sampler: CropSampler, found: "_Found", faced: List[BoxTrack],
                  persons: List[Person], tracks: List[BodyTrack], res: FrameResult, w: int,
                  h: int
                  ) -> Tuple["_Found", List[Tuple[Person, Detection]], List[BoxTrack]]:
        """A full scan in this frame for people lost by their tracked crops; returns what the
        frame's detectors found (this scan's, with the earlier scan's faces and boxes where
        this one did not run them), the box-only people it found through a face
        (``BodyStage.add_detections``; those of ``faced`` it finds again continued,
        ``_face_people``) and the face tracks still to hold."""
        with timed(res.timings_ms, "detect"):
            more = self._detect(sampler, "full", faces=not res.detector_ran)
        res.detector_ran = True
        if not more.boxes_ran:
            more.boxes, more.regions, more.boxes_ran = found.boxes, found.regions, found.boxes_ran
        more.faces = found.faces or more.faces
        with timed(res.timings_ms, "body"):
            face_only, faced = self._face_people(more, "full", faced, persons, w, h)
            face_only += self._bodies.add_detections(sampler, more.people, persons, tracks, w, h)
        return more, face_only, faced

    def close(self) -> None:
        """Stop the worker thread (``parallel``); ``process`` then runs everything inline."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _start(self, fn, *args) -> "Job":
        """Run ``fn(*args)`` on the worker thread, or here and now without one."""
        return Job(fn, args, self._pool)

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
        elif self._last_stamp is not None and stamp > self._last_stamp:
            dt = stamp - self._last_stamp
            self._frame_dt = dt if self._frame_dt is None else 0.8 * self._frame_dt + 0.2 * dt
        self._last_stamp = stamp

    def _scan_due(self) -> str:
        """'full' (nobody tracked), 'periodic' (interval or period reached), a part the last
        periodic scan left to this frame ('tiles', then 'deferred': see ``_detect``), 'boxes'
        (box-only people to follow: the whole-body detector alone) or ''."""
        cfg = self.config
        if not self._tracks and not self._box_only:
            return "full"
        if self._since_detector >= cfg.detector_interval:
            return "periodic"
        if (cfg.detector_period_s > 0 and self._last_stamp is not None
                and self._detector_stamp is not None
                and self._last_stamp - self._detector_stamp >= cfg.detector_period_s):
            return "periodic"
        if self._scan_rest and self._since_detector >= self._rest_at:
            return self._scan_rest[0]
        if self._box_only and self._person_det is not None:
            return "boxes"
        return ""

    def _detect(self, sampler: CropSampler, mode: str, faces: bool = True) -> "_Found":
        """The detectors of a scan: ``mode`` 'full' (every region), 'periodic' (the whole image
        plus one tile in turn, ``detector_tile_rotation``), 'tiles' (BlazePose's detector on
        that tile alone), 'boxes' or 'deferred' (the whole-body detector alone); face detections
        with ``faces`` (not on 'tiles'). The whole-body detector also scans the tiles holding
        last frame's box-only people, so that they are followed frame to frame.

        A periodic scan while nobody is box-only is spread over three frames: BlazePose's
        detector on the whole image and the face detector, then its tile ('tiles'), then the
        whole-body detector ('deferred', weak boxes checked as on a scan). All in one frame
        they kept a model running on the worker thread for about three body-model runs (28 ms
        on 2 CPU cores), and that frame's latency was the pipeline's p95. The parts run
        ``detector_part_gap`` frames apart (``_gap_for``: less where they would not fit before
        the next periodic scan): a node whose frame time is close to the camera's period
        queues the frames after a slow one, and parts on consecutive frames added up that
        backlog (through ROS, p95 latency 1.46-1.91x the core's in five runs, 1.27-1.64x with
        the gap). Where the parts run in the interval does not change how soon a new person is
        found (once every interval either way). With box-only people
        to follow nothing is spread (the whole-body detector runs on every frame anyway), nor
        is a periodic scan that comes due before the last one's parts have run (a scan on every
        frame: ``detector_interval`` 1): it runs whole and drops them."""
        cfg = self.config
        found = _Found()
        whole, tiled, boxes = self._scan_parts(mode, sampler.width, sampler.height)
        if whole or tiled:
            if whole:
                self._since_detector = 0
                self._detector_stamp = self._last_stamp
            regions: List[Optional[RotatedRect]] = [None] if whole else []
            if tiled:
                tiles = tile_rects(sampler.width, sampler.height)
                if tiles and mode != "full" and cfg.detector_tile_rotation:
                    tiles = [tiles[self._tile_turn % len(tiles)]]
                    self._tile_turn += 1
                regions += tiles
                found.people_tiles = tiles
            found.people = (self._pose_det.ssd.detect(sampler, rois=regions,
                                                      min_score=cfg.detector_min_score)
                            if regions else [])
            if faces and self._face_det is not None and whole:
                found.faces = self._face_det.detect(sampler)
        if boxes:
            found.regions = self._body_regions(sampler, mode)
            found.boxes = self._person_det.detect(sampler, found.regions)
            found.boxes_ran = True
        return found

    def _scan_parts(self, mode: str, w: int, h: int) -> Tuple[bool, bool, bool]:
        """What the scan ``mode`` runs on this frame: BlazePose's detector on the whole image,
        on tiles, the whole-body detector; first the parts left to later frames
        (``_scan_rest``, see ``_detect``) are brought up to date."""
        cfg = self.config
        if self._scan_rest and mode == self._scan_rest[0]:
            self._scan_rest.pop(0)
            self._rest_at = self._since_detector + 1 + self._part_gap
        elif mode in ("full", "periodic"):
            spread = mode == "periodic" and not self._box_only and not self._scan_rest
            self._scan_rest = []
            if spread and cfg.detector_tiles and tile_rects(w, h):
                self._scan_rest.append("tiles")
            if spread and self._person_det is not None:
                self._scan_rest.append("deferred")
            self._part_gap = self._gap_for(len(self._scan_rest))
            self._rest_at = 1 + self._part_gap
        later = self._scan_rest if mode == "periodic" else []
        whole = mode in ("full", "periodic")
        tiled = cfg.detector_tiles and (mode == "tiles" or (whole and "tiles" not in later))
        boxes = (self._person_det is not None and mode != "tiles"
                 and "deferred" not in later)
        return whole, bool(tiled), boxes

    def _gap_for(self, parts: int) -> int:
        """Frames between the ``parts`` left by a periodic scan: ``detector_part_gap``, less
        where the parts would not all run before the next periodic scan (``detector_interval``
        frames, or ``detector_period_s`` at the stream's frame rate)."""
        cfg = self.config
        frames = cfg.detector_interval
        if cfg.detector_period_s > 0 and self._frame_dt:
            frames = min(frames, int(cfg.detector_period_s / self._frame_dt))
        return min(cfg.detector_part_gap, max(0, (frames - 1 - parts) // max(1, parts)))

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
    def _hands(self, sampler: CropSampler, persons: List[Person], tracks: List[BodyTrack]) -> None:
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
        kept = [k for k in range(len(jobs)) if out.flag[k] >= cfg.min_hand_presence]
        gestures = {}
        if self._gestures is not None and kept:
            probs = self._gestures.classify_hands(out, sampler.width, sampler.height, kept)
            gestures = dict(zip(kept, probs))
        for k, (i, side, _roi) in enumerate(jobs):
            if out.flag[k] < cfg.min_hand_presence:
                continue
            persons[i].hands.append(hands_mod.make_hand(out, k, side, gestures.get(k)))
            tracks[i].hand_rois[side] = hands_mod.roi_from_landmarks(out.xyz[k, :, :2])


@dataclass
class _Found:
    """What one scan's detectors found."""

    people: List[Detection] = field(default_factory=list)   # BlazePose (face-anchored)
    people_tiles: List[RotatedRect] = field(default_factory=list)  # its tiles scanned
    faces: List[Detection] = field(default_factory=list)    # faces (BlazeFace)
    boxes: List[Detection] = field(default_factory=list)    # whole-body boxes
    boxes_ran: bool = False                                  # the whole-body detector ran
    regions: List[RotatedRect] = field(default_factory=list)  # where it ran
