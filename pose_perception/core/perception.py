"""The whole ROS-free per-frame pipeline: keypoints → 3D lifting → face–body association →
tracking → smoothing → interaction (gaze, attention, engagement) → body language (gestures,
pointing, posture, falls). The ROS node and the benchmarks call this; each stage lives in its own
module and is usable alone.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from .association import AssociationConfig, associate_frame, sync_face_track_ids
from .body_gestures import BodyGestureConfig
from .body_language import (LEVEL_CAMERA_UP, BodyLanguageConfig, BodyLanguageTracker)
from .camera import CameraModel
from .gaze import GazeConfig, estimate_gaze
from .interaction import AttentionConfig, EngagementConfig, InteractionTracker
from .keypoint_pipeline import KeypointConfig, KeypointPipeline
from .lifting import Lifter, LiftingConfig
from .pointing import PointingConfig
from .posture import PostureConfig
from .smoothing import PersonSmoother, SmootherConfig
from .tracking import Tracker, TrackerConfig
from .types import FrameResult
from .worker import INFERENCE_CLOCK

LOG = logging.getLogger(__name__)


def dataclass_from_dict(cls, values: Optional[Mapping[str, Any]], section: str = ""):
    """Build dataclass ``cls`` from a mapping; unknown keys are a clear ``ValueError``; lists
    become tuples where the default is a tuple."""
    values = dict(values or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        where = f" in section '{section}'" if section else ""
        raise ValueError(f"unknown parameter(s) {unknown}{where}; valid: {sorted(names)}")
    for key, value in list(values.items()):
        default = names[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            values[key] = tuple(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid parameters{' in ' + section if section else ''}: {exc}") from exc


@dataclass
class PerceptionConfig:
    keypoints: KeypointConfig = field(default_factory=KeypointConfig)
    lifting: LiftingConfig = field(default_factory=LiftingConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    tracking: TrackerConfig = field(default_factory=TrackerConfig)
    smoothing: SmootherConfig = field(default_factory=SmootherConfig)
    enable_tracking: bool = True
    enable_smoothing: bool = True
    backwards_tolerance_s: float = 0.001   # stamps further back than this reset tracking
    # Body keypoint model: empty = the built-in BlazePose stage (section 'keypoints'); else the
    # path of a custom model's YAML (docs/bring_your_own_model.md: heatmap, simcc, yolo_pose,
    # openpose families), which then replaces the built-in body and face stage.
    keypoint_model: str = ""
    # gaze, attention and engagement per tracked person (sections gaze, attention, engagement)
    gaze: GazeConfig = field(default_factory=GazeConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    engagement: EngagementConfig = field(default_factory=EngagementConfig)
    enable_interaction: bool = True
    # gestures, pointing, posture and falls per tracked person (sections body_language, posture,
    # body_gestures, pointing; needs enable_interaction)
    body_language: BodyLanguageConfig = field(default_factory=BodyLanguageConfig)
    posture: PostureConfig = field(default_factory=PostureConfig)
    body_gestures: BodyGestureConfig = field(default_factory=BodyGestureConfig)
    pointing: PointingConfig = field(default_factory=PointingConfig)
    enable_body_language: bool = True

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "PerceptionConfig":
        values = dict(values or {})
        sections = {"keypoints": KeypointConfig, "lifting": LiftingConfig,
                    "association": AssociationConfig, "tracking": TrackerConfig,
                    "smoothing": SmootherConfig, "gaze": GazeConfig,
                    "attention": AttentionConfig, "engagement": EngagementConfig,
                    "body_language": BodyLanguageConfig, "posture": PostureConfig,
                    "body_gestures": BodyGestureConfig, "pointing": PointingConfig}
        kwargs = {name: dataclass_from_dict(kind, values.pop(name, None), name)
                  for name, kind in sections.items()}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            top = sorted({f.name for f in dataclasses.fields(cls)} - set(sections))
            raise ValueError(f"unknown parameter(s) {unknown}; valid sections: {sorted(sections)}"
                             f", plus {top}")
        return cls(**kwargs, **values)


def build_keypoint_stage(config: PerceptionConfig):
    """The keypoint stage the config selects: the built-in pipeline or a custom model."""
    if not config.keypoint_model:
        return KeypointPipeline(config.keypoints)
    from .custom.model import CustomKeypointStage, load_estimator
    return CustomKeypointStage(load_estimator(config.keypoint_model))


class Perception:
    """Runs the stages for one colour frame (and its depth, when there is one)."""

    def __init__(self, config: Optional[PerceptionConfig] = None,
                 keypoints: Optional[KeypointPipeline] = None) -> None:
        self.config = config or PerceptionConfig()
        self.keypoints = keypoints or build_keypoint_stage(self.config)
        self.lifter = Lifter(self.config.lifting)
        ids = itertools.count(1)          # one id space for people and body-less faces
        self.tracker = Tracker(self.config.tracking, ids)
        self.face_tracker = Tracker(self.config.tracking, ids)
        self.smoother = PersonSmoother(self.config.smoothing)
        self.interaction = InteractionTracker(self.config.attention, self.config.engagement)
        c = self.config
        self.body_language = BodyLanguageTracker(c.body_language, c.posture, c.body_gestures,
                                                 c.pointing)
        # the robot's point for attention and engagement, in the frame of the 3D results
        self.attention_target = (0.0, 0.0, 0.0)
        # up (against gravity) in the frame of the 3D results; the node sets it from TF
        self.up = LEVEL_CAMERA_UP
        self._last_stamp: Optional[float] = None
        self.resets = 0

    @property
    def provider(self) -> str:
        return self.keypoints.provider

    @property
    def precision(self) -> str:
        return str(getattr(self.keypoints, "precision", "fp32"))

    def close(self) -> None:
        """Stop the keypoint stage's worker thread (if any)."""
        close = getattr(self.keypoints, "close", None)
        if close is not None:
            close()

    def reset(self) -> None:
        """Forget everything that depends on time (tracked crops, tracks, filter states)."""
        self.keypoints.reset()
        self._last_stamp = None
        self._reset_tracking()

    def _reset_tracking(self) -> None:
        """Forget what :meth:`finish` carries between frames (tracks, filter states)."""
        self.tracker.reset()
        self.face_tracker.reset()
        self.smoother.reset()
        self.interaction.reset()
        self.body_language.reset()
        self.resets += 1

    def interact(self, result: FrameResult, stamp_s: float,
                 target=(0.0, 0.0, 0.0)) -> list:
        """Gaze of every face with a head pose, then attention and engagement per tracked
        person (and body-less face), towards ``target`` (the robot's point in the frame of the
        3D results; default the camera centre)."""
        people = []
        for p in result.persons:
            face = p.face
            if face is not None and face.gaze is None:
                face.gaze = estimate_gaze(face.head_pose, face.eyes, self.config.gaze)
            people.append((p.track_id, face.gaze if face is not None else None, p.centroid))
        for f in result.faces_without_body:
            if f.gaze is None:
                f.gaze = estimate_gaze(f.head_pose, f.eyes, self.config.gaze)
            people.append((f.track_id, f.gaze, None))
        return self.interaction.update(people, stamp_s, target)

    def read_body_language(self, result: FrameResult, stamp_s: float,
                           depth_m: Optional[np.ndarray] = None,
                           camera: Optional[CameraModel] = None, target=None,
                           up=None) -> None:
        """Posture, gestures and pointing of every tracked person into their interaction
        (``PersonInteraction.body``), the frame's events into ``result.events``. ``target``
        and ``up`` default to :attr:`attention_target` and :attr:`up`."""
        bodies, result.events = self.body_language.update(
            result.persons, stamp_s, self.up if up is None else up, depth_m, camera,
            self.attention_target if target is None else target)
        for it in result.interactions:
            it.body = bodies.get(it.track_id)

    def process(self, rgb: np.ndarray, stamp_s: float, depth_m: Optional[np.ndarray] = None,
                camera: Optional[CameraModel] = None,
                depth_camera: Optional[CameraModel] = None) -> FrameResult:
        """One frame. ``depth_m``: float32 metres (NaN invalid), registered to the colour image
        (same or another resolution; ``depth_camera`` describes it when its size differs).
        Without depth or camera the result is 2D only (every 3D field invalid).

        The same as :meth:`detect` then :meth:`finish`; :class:`~.overlap.OverlappedPerception`
        runs the two halves of consecutive frames at once."""
        t0 = time.perf_counter()
        result = self.detect(rgb, stamp_s, depth_m, camera, depth_camera)
        self.finish(result, stamp_s, depth_m, camera, depth_camera)
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
        return result

    def detect(self, rgb: np.ndarray, stamp_s: float, depth_m: Optional[np.ndarray] = None,
               camera: Optional[CameraModel] = None,
               depth_camera: Optional[CameraModel] = None) -> FrameResult:
        """The frame's first half: the keypoint models (2D people, faces, hands). Stamps that
        go back in time reset the keypoint stage here and everything else in :meth:`finish`.
        ``timings_ms['inference']``: wall time in which some model ran.

        Given the frame's depth and camera (the same that :meth:`finish` then gets), the faces
        whose meshes run on the keypoint worker beside the body model are lifted to 3D there
        as soon as they are found (``result.faces_lifted``; their time is in
        ``timings_ms['lift']``): on 2 CPU cores that took 5 points off the share of the frame
        in which no model runs (README, Performance)."""
        inference0 = INFERENCE_CLOCK.total_ms()
        stamp_s = float(stamp_s)
        back = (self._last_stamp is not None
                and stamp_s < self._last_stamp - self.config.backwards_tolerance_s)
        if back:
            self.keypoints.reset()
        previous, self._last_stamp = self._last_stamp, stamp_s
        early = self._face_lifter(depth_m, camera, depth_camera)
        if early is None:
            result = self.keypoints.process(rgb, stamp_s)
        else:
            result = self.keypoints.process(rgb, stamp_s, on_faces=early)
            kept = {id(f) for f in result.faces}      # speculated meshes may be dropped
            result.faces_lifted = [f for f in early.faces if id(f) in kept]
            # the faces' lifting ran inside the face stage: count it as lifting
            ms = result.timings_ms
            ms["lift"], ms["face"] = early.ms, max(0.0, ms.get("face", 0.0) - early.ms)
        if back:
            result.warnings.insert(0, f"time went backwards by {previous - stamp_s:.3f} s "
                                      "(bag loop?): tracking reset")
            result.time_reset = True
        # wall time in which some model ran (the rest ran no model)
        result.timings_ms["inference"] = INFERENCE_CLOCK.total_ms() - inference0
        return result

    def _face_lifter(self, depth_m: Optional[np.ndarray], camera: Optional[CameraModel],
                     depth_camera: Optional[CameraModel]) -> Optional["_FaceLifter"]:
        """What lifts faces during :meth:`detect`: None without depth and camera, for a custom
        keypoint stage, or for a depth image :meth:`finish` refuses (it then says why)."""
        if depth_m is None or camera is None or not isinstance(self.keypoints, KeypointPipeline):
            return None
        try:
            depth, dcam = self.lifter.depth_and_camera(depth_m, camera, depth_camera)
        except ValueError:
            return None
        return _FaceLifter(self.lifter, depth, camera, dcam)

    def finish(self, result: FrameResult, stamp_s: float, depth_m: Optional[np.ndarray] = None,
               camera: Optional[CameraModel] = None, depth_camera: Optional[CameraModel] = None,
               attention_target=None, up=None) -> FrameResult:
        """The frame's second half, on :meth:`detect`'s result (in place; runs no model): 3D
        lifting, association, tracking, smoothing, interaction, body language.
        ``attention_target`` and ``up`` default to the attributes of the same names (the
        overlapped runner passes each frame's own)."""
        t0 = time.perf_counter()
        stamp_s = float(stamp_s)
        target = self.attention_target if attention_target is None else attention_target
        up = self.up if up is None else up
        if result.time_reset:
            self._reset_tracking()
        if depth_m is not None and camera is not None:
            t = time.perf_counter()
            self.lifter.lift_frame(result, depth_m, camera, depth_camera)
            result.timings_ms["lift"] = (result.timings_ms.get("lift", 0.0)
                                         + (time.perf_counter() - t) * 1e3)
        elif depth_m is not None:
            result.warnings.append("depth given without a colour camera model: 2D only")
        result.faces_lifted = []         # done with (tracking may put other Face objects in)

        t = time.perf_counter()
        associate_frame(result, self.config.association)
        if self.config.enable_tracking:
            result.persons = self.tracker.update(result.persons, stamp_s)
            if self.config.enable_smoothing:
                result.persons = self.smoother.update(result.persons, stamp_s)
        sync_face_track_ids(result.persons)
        if self.config.enable_tracking:
            result.faces_without_body = self.face_tracker.update_faces(
                result.faces_without_body, stamp_s)
        result.timings_ms["track"] = (time.perf_counter() - t) * 1e3
        if self.config.enable_interaction and self.config.enable_tracking:
            t = time.perf_counter()
            result.interactions = self.interact(result, stamp_s, target)
            result.timings_ms["interaction"] = (time.perf_counter() - t) * 1e3
            if self.config.enable_body_language:
                t = time.perf_counter()
                self.read_body_language(result, stamp_s, depth_m, camera, target, up)
                result.timings_ms["body_language"] = (time.perf_counter() - t) * 1e3
        result.timings_ms["finish"] = (time.perf_counter() - t0) * 1e3
        return result


class _FaceLifter:
    """The keypoint stage's ``on_faces`` in :meth:`Perception.detect`: lifts the faces it is
    given with the frame's depth (on the keypoint worker thread) and keeps them and the time."""

    def __init__(self, lifter: Lifter, depth: np.ndarray, camera: CameraModel,
                 depth_camera: CameraModel) -> None:
        self.lifter, self.depth, self.camera, self.depth_camera = (lifter, depth, camera,
                                                                   depth_camera)
        self.faces: list = []
        self.ms = 0.0

    def __call__(self, faces) -> None:
        t = time.perf_counter()
        self.lifter.lift_faces(faces, self.depth, self.camera, self.depth_camera)
        self.faces.extend(faces)
        self.ms += (time.perf_counter() - t) * 1e3
