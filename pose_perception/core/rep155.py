"""What REP-155 (ROS4HRI) asks of a body/face/gaze publisher, computed from the package's people
(ROS-free; the node side is ``ros/rep155.py``).

- ROIs and 2D skeletons are normalised to the image ([0, 1], x right, y down), with confidences.
- ``body_<id>``: at the person's torso centroid; x the body's forward (horizontal, away from the
  back), y its left (from the right to the left shoulder), z up (the reference frame's up,
  ``up``; the camera optical frame's up is -y). Without both shoulders: facing the camera.
- ``face_<id>``: the head pose (sellion; x forward, y left, z up), as REP-155 defines it.
- ``gaze_<id>``: at the face origin, z along the gaze, x to the person's right, y down: a
  virtual camera looking where the person looks (REP-155).
- ``/humans/bodies/<id>/posture`` and ``/gesture``: the body language's posture and the most
  confident body gesture as ``hri_msgs/BodyPosture`` and ``hri_msgs/Gesture`` values (their
  classes are a subset of the package's; a gesture they do not name is ``OTHER``).
Frames are 4x4 matrices (frame -> reference frame, i.e. its pose in the reference frame).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from transforms3d.quaternions import quat2mat

from .layouts import BLAZEPOSE33_TO_REP155_18, take
from .types import Keypoints, Person

OPTICAL_UP = (0.0, -1.0, 0.0)      # "up" in a camera optical frame (y down) held level
# hri_msgs/BodyPosture and hri_msgs/Gesture constants by the package's names (0: OTHER)
HRI_POSTURES = {"STANDING": 1, "SITTING": 2, "CROUCHING": 3, "LYING": 4}      # 4: LAYING
HRI_GESTURES = {"hands_on_face": 1, "arms_crossed": 2, "left_hand_raised": 3,
                "right_hand_raised": 4, "both_hands_raised": 5, "waving": 6}
HRI_OTHER = 0


def body_id(track_id: int) -> str:
    return f"b{int(track_id)}"


def face_id(track_id: int) -> str:
    return f"f{int(track_id)}"


def person_id(track_id: int) -> str:
    return f"p{int(track_id)}"


def hri_posture(body) -> Optional[int]:
    """``hri_msgs/BodyPosture.posture`` of a ``body_language.BodyLanguage`` (None without one
    or while the posture is unknown)."""
    if body is None:
        return None
    return HRI_POSTURES.get(getattr(body.posture, "name", ""))


def hri_gesture(body) -> Optional[int]:
    """``hri_msgs/Gesture.gesture``: the most confident body gesture going on, ``OTHER`` for
    one hri_msgs does not name (stop, pointing, a hand gesture), None without any."""
    gestures = sorted(getattr(body, "gestures", None) or [], key=lambda g: -g.confidence)
    if not gestures:
        return None
    named = [HRI_GESTURES[g.name] for g in gestures if g.name in HRI_GESTURES]
    return named[0] if named else HRI_OTHER


def normalized_roi(box: Sequence[float], width: int, height: int) -> np.ndarray:
    """(4,) xmin, ymin, xmax, ymax in [0, 1] of a pixel box."""
    b = np.asarray(box, np.float64).reshape(4) / [width, height, width, height]
    return np.clip(b, 0.0, 1.0)


def skeleton2d(body: Keypoints, width: int, height: int) -> Optional[np.ndarray]:
    """(18, 3) normalised x, y and confidence in hri_msgs/Skeleton2D order (blazepose33 only;
    None for other layouts). Points without a position get confidence 0."""
    if body.layout != "blazepose33":
        return None
    xy = take(body.xy, BLAZEPOSE33_TO_REP155_18).astype(np.float64)
    c = take(body.score, BLAZEPOSE33_TO_REP155_18).astype(np.float64)
    ok = np.all(np.isfinite(xy), axis=1)
    out = np.zeros((18, 3))
    out[ok, 0] = xy[ok, 0] / width
    out[ok, 1] = xy[ok, 1] / height
    out[ok, 2] = np.clip(c[ok], 0.0, 1.0)
    return out


def _frame(origin, x, z) -> Optional[np.ndarray]:
    """Right-handed frame from an x axis and a z axis (z kept, x orthogonalised)."""
    z = np.asarray(z, np.float64)
    z = z / np.linalg.norm(z)
    x = np.asarray(x, np.float64) - np.dot(x, z) * z
    n = np.linalg.norm(x)
    if n < 1e-6 or not np.all(np.isfinite(origin)):
        return None
    x /= n
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, np.cross(z, x), z, origin
    return T


def body_frame(person: Person, up: Sequence[float] = OPTICAL_UP) -> Optional[np.ndarray]:
    """``body_<id>`` (see the module docstring), or None without a 3D centroid."""
    c = person.centroid
    if c is None or not np.all(np.isfinite(c)):
        return None
    up = np.asarray(up, np.float64)
    forward = -np.asarray(c, np.float64)            # facing the camera
    kp = person.body
    if kp.layout == "blazepose33" and kp.xyz is not None and kp.xyz_valid[[11, 12]].all():
        left = kp.xyz[11].astype(np.float64) - kp.xyz[12]
        forward = np.cross(left, up)                 # y (left) x z (up) = x (forward)
    return _frame(c, forward, up)


def face_frame(head_pose) -> Optional[np.ndarray]:
    """``face_<id>``: the head pose as a matrix, or None."""
    if head_pose is None or not head_pose.valid:
        return None
    q = np.asarray(head_pose.orientation, np.float64)
    T = np.eye(4)
    T[:3, :3] = quat2mat([q[3], q[0], q[1], q[2]])
    T[:3, 3] = head_pose.position
    return T if np.all(np.isfinite(T)) else None


def gaze_frame(gaze, head: Optional[np.ndarray] = None,
               up: Sequence[float] = OPTICAL_UP) -> Optional[np.ndarray]:
    """``gaze_<id>``: z along the gaze, x to the person's right (the face's -y when the face
    frame ``head`` is given, else horizontal), y down."""
    if gaze is None:
        return None
    z = np.asarray(gaze.direction, np.float64)
    right = -head[:3, 1] if head is not None else np.cross(z, np.asarray(up, np.float64))
    return _frame(gaze.origin, right, z) if np.linalg.norm(right) > 1e-9 else None
