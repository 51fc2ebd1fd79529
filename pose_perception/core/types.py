"""Plain data types passed between the ROS-free stages (detection -> lifting -> tracking -> ROS).

Conventions (used everywhere in the package):
- 2D positions are pixels of the *colour image as published* (distorted), OpenCV convention:
  the top-left pixel's centre is (0, 0), x to the right, y down.
- 3D positions are metres in the colour camera's optical frame (x right, y down, z forward) unless
  a stage transformed them to another frame; NaN where invalid.
- Track ids are positive integers; 0 means "not tracked (yet)".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .layouts import COCO17_MAPS, FACE468_TO_IBUG68, get_layout, take

# where a 3D point came from (mirrored as constants in msg/Keypoint.msg)
SOURCE_NONE = 0    # no 3D
SOURCE_DEPTH = 1   # measured from the depth image
SOURCE_MODEL = 2   # filled from the model's own relative 3D, anchored to depth-valid joints

# how a person was found (mirrored as FOUND_BY_* in msg/Skeleton.msg)
FOUND_BY_LANDMARKS = 0   # body landmarks: the keypoints hold the person
FOUND_BY_BOX = 1         # a whole-body detector's box only: every keypoint invalid


@dataclass
class Keypoints:
    """A full, fixed-layout keypoint set (index i always the same joint)."""

    layout: str
    xy: np.ndarray                      # (N, 2) float32 pixels
    score: np.ndarray                   # (N,) float32 confidence in [0, 1]
    xyz: Optional[np.ndarray] = None    # (N, 3) float32 metres, NaN where invalid
    xyz_valid: Optional[np.ndarray] = None   # (N,) bool
    xyz_sigma: Optional[np.ndarray] = None   # (N,) float32 metres (1-sigma), NaN where invalid
    xyz_source: Optional[np.ndarray] = None  # (N,) uint8 SOURCE_*

    def __post_init__(self) -> None:
        n = get_layout(self.layout).size
        self.xy = np.asarray(self.xy, dtype=np.float32).reshape(n, 2)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(n)

    def __len__(self) -> int:
        return len(self.score)

    @property
    def has_3d(self) -> bool:
        return self.xyz is not None

    def init_3d(self) -> None:
        """Allocate 3D fields as 'all invalid'."""
        n = len(self)
        self.xyz = np.full((n, 3), np.nan, np.float32)
        self.xyz_valid = np.zeros(n, bool)
        self.xyz_sigma = np.full(n, np.nan, np.float32)
        self.xyz_source = np.zeros(n, np.uint8)

    def remap(self, layout: str, mapping) -> "Keypoints":
        """A view in another layout; mapping[j] = index or tuple of indices (averaged)."""
        out = Keypoints(layout, take(self.xy, mapping), take(self.score, mapping))
        if self.xyz is not None:
            out.xyz = take(self.xyz, mapping).astype(np.float32)
            out.xyz_valid = np.array([bool(np.all(self.xyz_valid[list(np.atleast_1d(m))]))
                                      for m in mapping])
            out.xyz_sigma = take(self.xyz_sigma, mapping).astype(np.float32)
            out.xyz_source = np.array([int(np.max(self.xyz_source[list(np.atleast_1d(m))]))
                                       for m in mapping], np.uint8)
        return out

    def copy(self) -> "Keypoints":
        k = Keypoints(self.layout, self.xy.copy(), self.score.copy())
        if self.xyz is not None:
            k.xyz, k.xyz_valid = self.xyz.copy(), self.xyz_valid.copy()
            k.xyz_sigma, k.xyz_source = self.xyz_sigma.copy(), self.xyz_source.copy()
        return k


@dataclass
class RotatedRect:
    """A rotated square/rectangle crop in image pixels (MediaPipe's NormalizedRect, in pixels)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float  # radians, counter-clockwise positive as MediaPipe defines it


@dataclass
class HeadPose:
    position: np.ndarray      # (3,) metres, same frame as the face points
    orientation: np.ndarray   # (4,) quaternion x, y, z, w (ROS order)
    valid: bool = True


@dataclass
class Face:
    mesh: Keypoints                      # layout 'face468'
    box: np.ndarray                      # (4,) x_min, y_min, x_max, y_max pixels
    score: float                         # face presence probability
    roi: Optional[RotatedRect] = None    # crop the mesh was run on
    person_index: int = -1               # index into FrameResult.persons, -1 = no body
    track_id: int = 0                    # the body's track id when associated, else the face's own
    associated: bool = False
    head_pose: Optional[HeadPose] = None
    eyes: Optional[Any] = None           # iris.EyeLandmarks, when the iris model ran
    gaze: Optional[Any] = None           # gaze.Gaze, when there is a head pose

    def ibug68(self) -> Keypoints:
        return self.mesh.remap("ibug68", FACE468_TO_IBUG68)


@dataclass
class Hand:
    keypoints: Keypoints                 # layout 'hand21'
    handedness: str                      # 'left' or 'right' (of the person)
    score: float                         # hand flag (presence probability)
    roi: Optional[RotatedRect] = None
    # (8,) gesture probabilities in the order of ``hand_gestures.HAND_GESTURES``; None where
    # gestures were not classified
    gesture: Optional[np.ndarray] = None

    def top_gesture(self) -> Optional[Tuple[str, float]]:
        """(label, probability) of the most probable gesture, or None if not classified."""
        if self.gesture is None:
            return None
        from .hand_gestures import top_gesture  # lazy: types stays free of model code
        return top_gesture(self.gesture)


@dataclass
class Person:
    body: Keypoints                      # layout 'blazepose33'
    box: np.ndarray                      # (4,) x_min, y_min, x_max, y_max pixels
    score: float                         # pose presence (landmark model's pose flag)
    world: Optional[np.ndarray] = None   # (33, 3) model's metric hip-centred 3D (metres)
    roi: Optional[RotatedRect] = None    # crop the landmarks came from
    next_roi: Optional[RotatedRect] = None  # crop for the next frame, derived from landmarks
    detector_score: float = float("nan")  # NaN when the person came from a tracked crop
    face: Optional[Face] = None
    hands: List[Hand] = field(default_factory=list)
    track_id: int = 0
    velocity: Optional[np.ndarray] = None    # (3,) m/s of the torso centre, when known
    # (3,) metres, robust torso position, when known; box-only people: the nearest surface
    # measured by the depth inside the box (``lifting.Lifter.lift_box_only``)
    centroid: Optional[np.ndarray] = None
    found_by: int = FOUND_BY_LANDMARKS       # FOUND_BY_*
    centroid_sigma: float = float("nan")     # metres, 1-sigma of ``centroid`` when known

    @property
    def box_only(self) -> bool:
        """Found by a whole-body detector box only: no usable keypoints."""
        return self.found_by == FOUND_BY_BOX

    def coco17(self) -> Keypoints:
        """The body in COCO-17 order (any body layout with an entry in ``COCO17_MAPS``)."""
        if self.body.layout == "coco17":
            return self.body
        try:
            mapping = COCO17_MAPS[self.body.layout]
        except KeyError:
            raise ValueError(f"no COCO-17 view of layout '{self.body.layout}'") from None
        return self.body.remap("coco17", mapping)


@dataclass
class FrameResult:
    persons: List[Person] = field(default_factory=list)
    faces_without_body: List[Face] = field(default_factory=list)
    timings_ms: Dict[str, float] = field(default_factory=dict)   # per stage
    # interaction.PersonInteraction per tracked person (with interaction on)
    interactions: List[Any] = field(default_factory=list)
    # body_language.PersonEvent of this frame: gestures started / ended, falls
    events: List[Any] = field(default_factory=list)
    detector_ran: bool = False
    warnings: List[str] = field(default_factory=list)
    # the stamp went back in time: tracking is reset before this frame (Perception.finish)
    time_reset: bool = False
    # faces lifted to 3D with this frame's depth by Perception.detect (on the keypoint worker,
    # while the body model ran): Lifter.lift_frame does not lift them again; Perception.finish
    # empties it
    faces_lifted: List[Face] = field(default_factory=list)

    @property
    def faces(self) -> List[Face]:
        return [p.face for p in self.persons if p.face is not None] + self.faces_without_body
