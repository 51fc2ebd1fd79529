"""The keypoint stage: RGB image in, 2D body (+ face, + hands) keypoints of every person out.

``KeypointPipeline.process(rgb)`` runs, per frame:

1. **detect** - the BlazePose person detector (whole image letterboxed, plus short-side tiles so
   that small people are seen closer), every ``detector_interval`` frames or whenever nobody is
   tracked. Detections overlapping a tracked person are ignored.
2. **body** - ``pose_landmark_full`` on one rotated crop per person, all crops in one batch. A
   tracked person's crop comes from their previous landmarks (so people who turn their face away
   stay tracked); a person is dropped when the pose flag falls below ``min_pose_presence``.
   Crops that are new this frame are run a second time on the crop derived from their own
   landmarks (``refine_new_crops``), which is what tracking converges to. On detector frames,
   faces found by the face detector that no person accounts for seed a body crop below them
   (``seed_bodies_from_faces``): the person detector misses some people.
3. **face** - the 468-point mesh on a head crop derived from the body's face keypoints (then
   from the previous mesh; a lost tracked mesh is retried from the head in the same frame),
   plus faces without a body from a BlazeFace detector (tracked by their mesh afterwards).
4. **hands** (``enable_hands``) - 21 points per hand from crops at the body's wrists.

Timings per stage (ms) go into ``FrameResult.timings_ms``. ROS-free.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import body as body_mod
from . import face as face_mod
from . import hands as hands_mod
from .crops import CropSampler, rect_corners
from .inference import DEFAULT_PROVIDERS, OnnxModel, resolve_model_path
from .ssd import Detection, box_iou, tile_rects
from .types import FrameResult, Keypoints, Person, RotatedRect

LOG = logging.getLogger(__name__)


@dataclass
class KeypointConfig:
    """Settings of the keypoint stage (the ROS node maps its parameters onto these)."""

    enable_face: bool = True
    enable_hands: bool = False
    providers: Tuple[str, ...] = DEFAULT_PROVIDERS
    threads: Optional[int] = None          # intra-op threads per model; None = cores, max 4
    require_gpu: bool = False
    models_dir: Optional[str] = None       # None: $POSE_PERCEPTION_MODEL_DIR or the user cache
    max_persons: int = 4
    # run the person detector every N frames (always when nobody is tracked); 1 = every frame
    detector_interval: int = 10
    detector_min_score: float = 0.5
    detector_tiles: bool = True            # second, closer detector pass on short-side squares
    min_pose_presence: float = 0.5         # pose flag below this: person dropped
    min_face_presence: float = 0.5
    min_hand_presence: float = 0.5
    face_detector: str = "full"            # faces without a body: 'full', 'short' or 'none'
    # new body faces: short-range face detector in the head region (as MediaPipe Holistic);
    # False: crop straight from the head keypoints
    face_recrop_detector: bool = True
    refine_new_crops: bool = True          # re-run new crops on their landmark-derived crop
    seed_bodies_from_faces: bool = True    # look for a body below faces no person accounts for
    heatmap_refinement: bool = True
    duplicate_distance: float = 0.1        # same person if median point distance < this x size
    track_overlap_iou: float = 0.5         # detection ignored if its crop overlaps a track's
    min_crop_px: float = 8.0               # smaller body crops are ignored

    def __post_init__(self) -> None:
        if self.face_detector not in ("full", "short", "none"):
            raise ValueError("face_detector must be 'full', 'short' or 'none'")
        if self.max_persons < 1 or self.detector_interval < 1:
            raise ValueError("max_persons and detector_interval must be >= 1")
        self.providers = tuple(self.providers)


@dataclass
class _Track:
    """What is carried from one frame to the next for one person."""

    roi: RotatedRect                            # body crop for the next frame
    face_roi: Optional[RotatedRect] = None
    hand_rois: Dict[str, RotatedRect] = field(default_factory=dict)


@dataclass
class _FaceTrack:
    roi: RotatedRect


def _rect_bounds(r: RotatedRect) -> np.ndarray:
    c = rect_corners(r)
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], np.float32)


class KeypointPipeline:
    """Body / face / hand keypoints for every person in an RGB image (see module docstring)."""

    def __init__(self, config: Optional[KeypointConfig] = None) -> None:
        self.config = cfg = config or KeypointConfig()
        load = self._loader(cfg)
        self._pose_det = body_mod.PoseDetector(load("pose_detection"))
        self._pose_lm = body_mod.PoseLandmarker(
            load("pose_landmark_full", drop_outputs=body_mod.is_segmentation_output),
            cfg.max_persons, refine=cfg.heatmap_refinement)
        self._face_lm = self._face_det = self._face_recrop = None
        if cfg.enable_face:
            self._face_lm = face_mod.FaceLandmarker(load("face_landmark"), cfg.max_persons)
            if cfg.face_recrop_detector or cfg.face_detector == "short":
                short = face_mod.FaceDetector(load("face_detection_short_range"), "short")
                self._face_recrop = short if cfg.face_recrop_detector else None
                if cfg.face_detector == "short":
                    self._face_det = short
            if cfg.face_detector == "full":
                self._face_det = face_mod.FaceDetector(load("face_detection_full_range"), "full")
        self._hand_lm = None
        if cfg.enable_hands:
            self._hand_lm = hands_mod.HandLandmarker(load("hand_landmark_full"),
                                                     2 * cfg.max_persons)
        self.provider: str = self._pose_lm.model.provider
        self.reset()

    @staticmethod
    def _loader(cfg: KeypointConfig):
        def load(name: str, **kw) -> OnnxModel:
            path = (resolve_model_path(f"{cfg.models_dir}/{name}.onnx") if cfg.models_dir
                    else resolve_model_path(name))
            return OnnxModel(path, providers=cfg.providers, threads=cfg.threads,
                             require_gpu=cfg.require_gpu, **kw)
        return load

    def reset(self) -> None:
        """Forget all tracked crops (e.g. when time jumps backwards); the next frame runs the
        detector."""
        self._tracks: List[_Track] = []
        self._face_tracks: List[_FaceTrack] = []
        self._frame = 0

    # ------------------------------------------------------------------ main entry
    def process(self, rgb: np.ndarray) -> FrameResult:
        """Keypoints of every person in an HxWx3 uint8 RGB image (2D only)."""
        rgb = self._check_image(rgb)
        h, w = rgb.shape[:2]
        res = FrameResult()
        sampler = CropSampler(rgb)

        # 1. detectors (people; faces, which also seed people the person detector missed)
        t0 = time.perf_counter()
        run_detector = (not self._tracks) or (self._frame % self.config.detector_interval == 0)
        new_rois: List[Tuple[RotatedRect, float]] = []
        face_dets: List[Detection] = []
        if run_detector:
            new_rois = self._detect_people(sampler, w, h)
            if self._face_det is not None:
                face_dets = self._face_det.detect(sampler)
        res.detector_ran = run_detector
        t1 = time.perf_counter()
        res.timings_ms["detect"] = (t1 - t0) * 1e3

        # 2. body landmarks
        persons, tracks = self._bodies(sampler, new_rois, w, h)
        if face_dets:
            face_dets = self._seed_from_faces(sampler, face_dets, persons, tracks, w, h)
        t2 = time.perf_counter()
        res.timings_ms["body"] = (t2 - t1) * 1e3

        # 3. faces
        if self._face_lm is not None:
            self._faces(sampler, persons, tracks, res, face_dets, w, h)
        t3 = time.perf_counter()
        res.timings_ms["face"] = (t3 - t2) * 1e3

        # 4. hands
        if self._hand_lm is not None and persons:
            self._hands(sampler, persons, tracks)
        res.timings_ms["hands"] = (time.perf_counter() - t3) * 1e3

        res.persons = persons
        self._tracks = tracks
        self._frame += 1
        return res

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

    # ------------------------------------------------------------------ bodies
    def _detect_people(self, sampler: CropSampler, w: int, h: int
                       ) -> List[Tuple[RotatedRect, float]]:
        cfg = self.config
        if len(self._tracks) >= cfg.max_persons:
            return []
        regions: List[Optional[RotatedRect]] = [None]
        if cfg.detector_tiles:
            regions += tile_rects(w, h)
        dets = self._pose_det.ssd.detect(sampler, rois=regions, min_score=cfg.detector_min_score)
        tracked = [_rect_bounds(t.roi) for t in self._tracks]
        out = []
        for d in dets:
            roi = body_mod.roi_from_detection(d)
            if not roi.width >= cfg.min_crop_px:
                continue
            b = _rect_bounds(roi)
            if tracked and box_iou(b, np.stack(tracked)).max() > cfg.track_overlap_iou:
                continue
            out.append((roi, d.score))
            tracked.append(b)
            if len(out) + len(self._tracks) >= cfg.max_persons:
                break
        return out

    def _bodies(self, sampler: CropSampler, new: Sequence[Tuple[RotatedRect, float]],
                w: int, h: int) -> Tuple[List[Person], List[_Track]]:
        """Landmarks for tracked crops and new detections; duplicates and lost people removed."""
        old = list(self._tracks) + [_Track(r) for r, _ in new]
        det_scores = [float("nan")] * len(self._tracks) + [s for _, s in new]
        persons: List[Person] = []
        tracks: List[_Track] = []
        self._add_bodies(sampler, old, det_scores, len(self._tracks), persons, tracks, w, h)
        return persons, tracks

    def _add_bodies(self, sampler: CropSampler, cands: List[_Track], det_scores: List[float],
                    first_new: int, persons: List[Person], tracks: List[_Track],
                    w: int, h: int) -> List[bool]:
        """Run the landmark model on candidate crops and append the people found to
        ``persons``/``tracks`` (skipping duplicates of people already there). Candidates from
        index ``first_new`` on are new crops (refined once when ``refine_new_crops``).
        Returns, per candidate, whether it became a person."""
        cfg = self.config
        if not cands:
            return []
        rois = [c.roi for c in cands]
        lm = self._pose_lm.run(sampler, rois)
        if cfg.refine_new_crops and first_new < len(rois):
            idx = [i for i in range(first_new, len(rois)) if lm.flag[i] >= cfg.min_pose_presence]
            if idx:
                again = self._pose_lm.run(sampler, [body_mod.roi_from_landmarks(lm.xy[i])
                                                    for i in idx])
                for j, i in enumerate(idx):
                    if again.flag[j] >= cfg.min_pose_presence:
                        for name in ("xy", "z", "visibility", "presence", "flag", "world"):
                            getattr(lm, name)[i] = getattr(again, name)[j]
                        lm.rois[i] = again.rois[j]
        accepted: Dict[int, Tuple[Person, _Track]] = {}
        room = cfg.max_persons - len(persons)
        # strongest first, so that duplicates (two crops on one person) keep the better one
        for i in sorted(range(len(cands)), key=lambda i: -float(lm.flag[i])):
            if lm.flag[i] < cfg.min_pose_presence or len(accepted) >= room:
                continue
            xy = lm.xy[i]
            if any(self._same_person(xy, p.body.xy)
                   for p in persons + [a[0] for a in accepted.values()]):
                continue
            nxt = body_mod.roi_from_landmarks(xy)
            if not (np.isfinite([nxt.cx, nxt.cy, nxt.width]).all()
                    and nxt.width >= cfg.min_crop_px):
                continue
            kp = Keypoints("blazepose33", xy[:body_mod.NUM_BODY],
                           lm.visibility[i, :body_mod.NUM_BODY])
            person = Person(
                body=kp, box=body_mod.box_from_landmarks(xy, lm.presence[i], w, h),
                score=float(lm.flag[i]), world=lm.world[i], roi=lm.rois[i], next_roi=nxt,
                detector_score=det_scores[i])
            accepted[i] = (person, _Track(nxt, cands[i].face_roi, dict(cands[i].hand_rois)))
        for i in sorted(accepted):            # keep the candidates' (tracks') order
            persons.append(accepted[i][0])
            tracks.append(accepted[i][1])
        return [i in accepted for i in range(len(cands))]

    def _same_person(self, a: np.ndarray, b: np.ndarray) -> bool:
        pa, pb = a[:body_mod.NUM_BODY], b[:body_mod.NUM_BODY]
        size = max(float(np.ptp(pa[:, 0])), float(np.ptp(pa[:, 1])), 1.0)
        dist = float(np.median(np.linalg.norm(pa - pb, axis=1)))
        return dist < self.config.duplicate_distance * size

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

    # ------------------------------------------------------------------ faces
    def _faces(self, sampler: CropSampler, persons: List[Person], tracks: List[_Track],
               res: FrameResult, face_dets: Sequence[Detection], w: int, h: int) -> None:
        """Meshes for each body's face (tracked crop, else a new crop from the head) and for
        faces without a body (tracked, or new from the face detector)."""
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
        meshes = self._face_lm.run(sampler, rois)
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
