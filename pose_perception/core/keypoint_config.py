"""Settings of the keypoint stage (``KeypointPipeline``); the ROS node maps its parameters
``perception.keypoints.<field>`` onto these. ROS-free."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .inference import DEFAULT_PROVIDERS, NO_SPIN_MAX_CORES, usable_cores
from .precision import check_precision

# the models that run every tracked person's crops in one call on the calling thread (the others
# run beside them on the worker, or are small): they get ``threads``, the others
# ``light_model_threads``
BODY_LANDMARK_MODEL = "pose_landmark_full"
HAND_LANDMARK_MODEL = "hand_landmark_full"
FULL_THREAD_MODELS = (BODY_LANDMARK_MODEL, HAND_LANDMARK_MODEL)


@dataclass
class KeypointConfig:
    """Settings of the keypoint stage (the ROS node maps its parameters onto these)."""

    enable_face: bool = True
    enable_gaze: bool = True               # eyes and irises of every face (iris_landmark)
    # eyes narrower than this (corner to corner, px) are not run through the iris model: too
    # small to read (keep perception.gaze.min_eye_px at least this)
    iris_min_eye_px: float = 10.0
    enable_hands: bool = False
    # gesture probabilities of every hand (MediaPipe's canned classifier, core/hand_gestures.py);
    # only with enable_hands, and only where its models are provisioned (else a warning)
    enable_hand_gestures: bool = True
    providers: Tuple[str, ...] = DEFAULT_PROVIDERS
    threads: Optional[int] = None          # intra-op threads per model; None = cores, max 4
    # intra-op threads of every model but the body and hand landmark models (face mesh, iris,
    # gestures, the face and person detectors); None: 1 on 4 usable cores or fewer, where the
    # threads do not spin and waking a second one costs a small model more than it gains, and
    # most of them run beside the body model (README, Performance); else ``threads``
    light_model_threads: Optional[int] = None
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
    # frames between the parts of a periodic scan spread over frames (at most what fits in
    # detector_interval), so that a slow frame's backlog drains before the next one
    detector_part_gap: int = 2
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
    # are published as box-only people (keypoints invalid). Periodic scans run it two frames
    # after BlazePose's detector (whole image, then its tile: no frame waits for all three);
    # with box-only people to follow, on every frame
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
    # at most this many box-only people per frame: as many as the detector's own TF
    # post-processing keeps per image (max_total_detections 100)
    max_box_only: int = 100
    # a face-anchored detection whose crop finds nobody with a usable pose flag, but whose
    # low-flag landmarks put a head on the detection's face and show none of the people found,
    # is published box-only (BodyStage.add_detections; README "people known only by a box")
    face_box_only: bool = True

    def model_threads(self, name: str) -> Optional[int]:
        """Intra-op threads for the model ``name`` (None: onnxruntime's wrapper default,
        ``inference.default_threads``)."""
        if name in FULL_THREAD_MODELS:
            return self.threads
        if self.light_model_threads:
            return self.light_model_threads
        return 1 if usable_cores() <= NO_SPIN_MAX_CORES else self.threads

    def __post_init__(self) -> None:
        if self.face_detector not in ("full", "short", "none"):
            raise ValueError("face_detector must be 'full', 'short' or 'none'")
        if self.max_persons < 1 or self.detector_interval < 1:
            raise ValueError("max_persons and detector_interval must be >= 1")
        if self.detector_part_gap < 0:
            raise ValueError("detector_part_gap must be >= 0")
        if not (0.0 < self.person_detector_confirm_score <= self.person_detector_min_score < 1.0
                and 0.0 < self.person_box_match_iou <= 1.0):
            raise ValueError("need 0 < person_detector_confirm_score <= "
                             "person_detector_min_score < 1 and person_box_match_iou in (0, 1]")
        if not (self.person_detector_tile_px >= 0 and self.max_box_only >= 0):
            raise ValueError("person_detector_tile_px and max_box_only must be >= 0")
        if not (self.detector_period_s >= 0 and self.reanchor_ratio >= 0):
            raise ValueError("detector_period_s and reanchor_ratio must be >= 0")
        for field_name in ("threads", "light_model_threads"):
            v = getattr(self, field_name)
            if v is not None and v < 0:
                raise ValueError(f"{field_name} must be >= 0 (0 or None: the default)")
        if not self.lost_retry_scale >= 1.0:
            raise ValueError("lost_retry_scale must be >= 1 (1 = no retry)")
        self.providers = tuple(self.providers)
        check_precision(self.precision)
        self.precision_models = tuple(self.precision_models)
