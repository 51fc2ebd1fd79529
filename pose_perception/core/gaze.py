"""Where a person looks: a gaze ray in 3D from the head pose and the irises. ROS-free.

The eye-in-head direction comes from where each iris sits between its eye corners: its offset
from the corners' midpoint along the face's left axis as the head pose projects it into the
image, divided by the eyeball radius in pixels (``EYE_WIDTH_PER_RADIUS``: an eye opening is about
2.4 eyeball radii wide, 28-30 mm against 12 mm), is the sine of the eyes' yaw in the head. The
eyes' vertical rotation is not read: the eyelids follow it and hide the iris (on real photos
people looking down at a table read as looking up); the head's pitch stands for it. The
direction, rotated by the head pose, is the gaze; its origin is the sellion (between the eyes;
``HeadPose.position``).

Where the eyes cannot be read (opening narrower than ``min_eye_px``, eyes closed, a face turned
more than ``max_head_yaw_deg`` away so one eye is hidden, no irises), the gaze is the head's
forward axis (``source = "head"``) with a lower confidence. Frames: the head pose's (the
colour camera's optical frame unless a stage moved it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from transforms3d.quaternions import quat2mat

from .geometry import vector_norm
from .iris import EYE_VERTICES, EyeLandmarks
from .types import HeadPose

EYE_WIDTH_PER_RADIUS = 2.4
SOURCE_EYES = "eyes"
SOURCE_HEAD = "head"


@dataclass
class GazeConfig:
    min_eye_px: float = 10.0          # narrower eye openings are not read
    min_openness: float = 0.12        # lid distance / eye width below this: eyes closed
    max_head_yaw_deg: float = 50.0    # a face turned further away: head direction only
    eyes_confidence: float = 0.9      # confidence of an eye-based gaze at full eye size
    head_confidence: float = 0.5      # confidence of the head-direction fallback


@dataclass
class Gaze:
    origin: np.ndarray        # (3,) metres: the sellion, in the head pose's frame
    direction: np.ndarray     # (3,) unit vector, same frame
    confidence: float         # [0, 1]
    source: str               # SOURCE_EYES or SOURCE_HEAD
    eye_yaw_deg: float = 0.0  # eyes in the head: to the person's left (+)
    eye_pitch_deg: float = 0.0  # eyes in the head: up (+)


def _unit(v: np.ndarray) -> Optional[np.ndarray]:
    n = vector_norm(v)
    return v / n if n > 1e-9 else None


def _clip1(x: float) -> float:
    """``x`` clipped to [-1, 1] (NaN stays NaN, as with ``np.clip``)."""
    return 1.0 if x > 1.0 else -1.0 if x < -1.0 else x


def _acos_deg(cosine) -> float:
    """The angle in degrees of a cosine (clipped to [-1, 1] first)."""
    return math.degrees(math.acos(_clip1(float(cosine))))


def _mean(values: list) -> float:
    """Mean of a few floats, summed in order from the first (as numpy's mean of fewer than
    eight)."""
    total = values[0]
    for v in values[1:]:
        total += v
    return total / len(values)


def eye_in_head(eyes: EyeLandmarks, R: np.ndarray, config: GazeConfig) -> Optional[tuple]:
    """(yaw, pitch) radians of the eyes in the head (yaw: mean of the readable eyes; pitch: 0,
    see the module docstring) and the mean readable eye width in pixels, or None when no eye
    can be read. ``R``: face frame (x forward, y left, z up) -> camera optical frame."""
    left_img = _unit(R[:2, 1])       # the face's left axis as seen in the image
    if left_img is None:
        return None
    yaws, widths = [], []
    for k in range(len(EYE_VERTICES)):
        outer, inner, upper, lower = eyes.mesh_points[k]      # the mesh the irises came from
        width = float(eyes.eye_width_px[k])
        openness = vector_norm(upper - lower) / max(width, 1e-6)
        iris = eyes.iris[k, 0]
        if (width < config.min_eye_px or openness < config.min_openness
                or not all(map(math.isfinite, iris.tolist()))):      # not run: too small
            continue
        offset = iris - (outer + inner) / 2.0
        radius = width / EYE_WIDTH_PER_RADIUS
        yaws.append(math.asin(_clip1(float(offset @ left_img / radius))))
        widths.append(width)
    if not yaws:
        return None
    return _mean(yaws), 0.0, _mean(widths)


def estimate_gaze(head: Optional[HeadPose], eyes: Optional[EyeLandmarks],
                  config: Optional[GazeConfig] = None) -> Optional[Gaze]:
    """The gaze of a face with a head pose (None without one); see the module docstring."""
    cfg = config or GazeConfig()
    if head is None or not head.valid:
        return None
    origin = np.asarray(head.position, np.float64)
    if not all(map(math.isfinite, origin.tolist())):
        return None
    qx, qy, qz, qw = np.asarray(head.orientation, np.float64).tolist()   # ROS order
    R = quat2mat((qw, qx, qy, qz))
    forward = R[:, 0]
    # how far the face is turned from the camera (its forward axis against the line of sight)
    to_camera = _unit(-origin)
    turned = _acos_deg(forward @ to_camera) if to_camera is not None else 180.0
    read = None
    if eyes is not None and turned <= cfg.max_head_yaw_deg:
        read = eye_in_head(eyes, R, cfg)
    if read is None:
        return Gaze(origin, forward / vector_norm(forward), cfg.head_confidence, SOURCE_HEAD)
    yaw, pitch, width = read
    d_head = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                       math.sin(pitch)])
    d = R @ d_head
    size = min(1.0, width / (2.0 * cfg.min_eye_px))       # small eyes: less sure
    return Gaze(origin, d / vector_norm(d), cfg.eyes_confidence * size, SOURCE_EYES,
                math.degrees(yaw), math.degrees(pitch))


def angle_to_target_deg(gaze: Gaze, target: np.ndarray) -> float:
    """Angle (degrees) between the gaze and the line from its origin to ``target`` (same
    frame); 180 when the target is at the origin."""
    to = _unit(np.asarray(target, np.float64) - gaze.origin)
    return 180.0 if to is None else _acos_deg(gaze.direction @ to)
