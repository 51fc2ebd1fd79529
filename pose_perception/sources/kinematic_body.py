"""A small kinematic body model: scripted people for the posture and body gesture tests and the
demo's body-language script (SYNTHETIC skeletons, no images).

A BlazePose-33 skeleton is built from joint angles in the body frame B (x the person's left,
y up, z the way the chest faces; the hips' centre at the origin), turned as a whole (e.g. to lie
down), put on the floor of a world frame W (z up) facing a given way, and seen by a camera at
any height, pitch and roll. ``Scene.keypoints`` gives the keypoints in the camera optical frame
(projected with a pinhole, 3D all valid) and ``Scene.up`` the matching up vector.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from pose_perception.core.types import SOURCE_DEPTH, Keypoints

FX = FY = 600.0
CX, CY = 320.0, 240.0
THIGH, SHANK, TRUNK, HIP_HALF, SHOULDER_HALF = 0.45, 0.43, 0.50, 0.10, 0.18

# arm poses: (elbow, wrist) offsets from the shoulder in B for the person's LEFT arm (x is
# mirrored for the right one)
ARM_DOWN = ((0.03, -0.28, 0.0), (0.05, -0.53, 0.03))
ARM_RAISED = ((0.12, 0.25, 0.0), (0.15, 0.52, 0.03))
ARM_FORWARD = ((0.0, 0.0, 0.28), (0.0, 0.02, 0.53))          # straight, at shoulder height
ARM_PALM_UP = ((0.25, 0.0, 0.05), (0.30, 0.24, 0.05))        # elbow out sideways, forearm up
ARM_CROSSED = ((0.02, -0.25, 0.12), (-0.26, -0.18, 0.14))    # wrist past the midline
ARM_TO_FACE = ((0.10, -0.15, 0.25), (-0.12, 0.12, 0.12))     # hand at the mouth


def rot(axis: Sequence[float], deg: float) -> np.ndarray:
    """Rotation matrix about ``axis`` by ``deg`` (right hand)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    x, y, z = a
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    K = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + s * K + (1 - c) * K @ K


def body_points(trunk_deg: float = 0.0, hip_deg: Tuple[float, float] = (0.0, 0.0),
                knee_deg: Tuple[float, float] = (0.0, 0.0),
                arms: Tuple[tuple, tuple] = (ARM_DOWN, ARM_DOWN)) -> np.ndarray:
    """(33, 3) points in B. ``trunk_deg``: forward lean of the trunk; ``hip_deg``: flexion of
    each thigh forward from hanging down (left, right); ``knee_deg``: knee flexion (0 straight);
    ``arms``: (elbow, wrist) shoulder offsets (left, right), each given for a left arm."""
    p = np.zeros((33, 3))
    for side, sx in ((0, 1.0), (1, -1.0)):
        hip = np.array([sx * HIP_HALF, 0.0, 0.0])
        a, b = math.radians(hip_deg[side]), math.radians(hip_deg[side] - knee_deg[side])
        knee = hip + THIGH * np.array([0.0, -math.cos(a), math.sin(a)])
        ankle = knee + SHANK * np.array([0.0, -math.cos(b), math.sin(b)])
        p[23 + side], p[25 + side], p[27 + side] = hip, knee, ankle
        p[29 + side] = ankle + (0.0, -0.05, -0.05)
        p[31 + side] = ankle + (0.0, -0.07, 0.15)
    t = math.radians(trunk_deg)
    axis = np.array([0.0, math.cos(t), math.sin(t)])
    top = TRUNK * axis
    fwd = np.cross([1.0, 0.0, 0.0], axis)                     # the chest's way, tilted
    for side, sx in ((0, 1.0), (1, -1.0)):
        sho = top + (sx * SHOULDER_HALF, 0.0, 0.0)
        p[11 + side] = sho
        lean = rot((1, 0, 0), -trunk_deg)                     # arms lean with the trunk
        elbow, wrist = (np.array(v) * (sx, 1.0, 1.0) for v in arms[side])
        p[13 + side] = sho + lean @ elbow
        p[15 + side] = sho + lean @ wrist
        fore = (p[15 + side] - p[13 + side]) / np.linalg.norm(p[15 + side] - p[13 + side])
        p[17 + side] = p[15 + side] + 0.08 * fore + (sx * 0.02, 0, 0)   # pinky
        p[19 + side] = p[15 + side] + 0.09 * fore                        # index
        p[21 + side] = p[15 + side] + 0.05 * fore - (sx * 0.02, 0, 0)    # thumb
    head = top + 0.20 * axis
    nose = head + 0.10 * fwd
    p[0] = nose
    for i, (dx, dz) in zip(range(1, 7), ((0.015, 0.07), (0.03, 0.07), (0.045, 0.06),
                                         (-0.015, 0.07), (-0.03, 0.07), (-0.045, 0.06))):
        p[i] = head + 0.03 * axis + (dx, 0, 0) + dz * fwd
    p[7], p[8] = head + (0.075, 0, 0), head - (0.075, 0, 0)
    p[9], p[10] = nose - 0.05 * axis + (0.025, 0, 0), nose - 0.05 * axis - (0.025, 0, 0)
    return p


@dataclass
class Camera:
    """A camera in W looking along +x from ``position``, pitched down and rolled (degrees)."""

    position: Tuple[float, float, float] = (-3.0, 0.0, 1.2)
    pitch_deg: float = 0.0
    roll_deg: float = 0.0

    def rotation(self) -> np.ndarray:
        """R_WC: camera optical axes (x right, y down, z forward) in W."""
        level = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        return level @ rot((1, 0, 0), -self.pitch_deg) @ rot((0, 0, 1), self.roll_deg)


@dataclass
class Scene:
    camera: Camera = field(default_factory=Camera)

    @property
    def up(self) -> np.ndarray:
        return self.camera.rotation().T @ np.array([0.0, 0.0, 1.0])

    def world_points(self, body: np.ndarray, at=(0.0, 0.0), facing_deg: float = 180.0,
                     turn: Optional[np.ndarray] = None, floor_gap: float = 0.03,
                     hip_height: Optional[float] = None) -> np.ndarray:
        """Body points (B) turned by ``turn``, facing ``facing_deg`` (yaw in W; 180 faces the
        default camera) at ``at``, the lowest point ``floor_gap`` above the floor (or the hips
        at ``hip_height``, e.g. on a chair)."""
        b = body @ (turn if turn is not None else np.eye(3)).T
        yaw = math.radians(facing_deg)
        fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        R_WB = np.stack([np.cross([0.0, 0.0, 1.0], fwd), [0.0, 0.0, 1.0], fwd], axis=1)
        w = b @ R_WB.T
        z = hip_height if hip_height is not None else floor_gap - w[:, 2].min()
        return w + np.array([at[0], at[1], z])

    def keypoints(self, world: np.ndarray, score: float = 0.9) -> Keypoints:
        R = self.camera.rotation()
        xyz = (world - np.asarray(self.camera.position)) @ R
        xy = np.stack([FX * xyz[:, 0] / xyz[:, 2] + CX, FY * xyz[:, 1] / xyz[:, 2] + CY], axis=1)
        kp = Keypoints("blazepose33", xy, np.full(33, score))
        kp.init_3d()
        kp.xyz[:] = xyz
        kp.xyz_valid[:] = True
        kp.xyz_sigma[:] = 0.01
        kp.xyz_source[:] = SOURCE_DEPTH
        return kp


# cameras the rules must agree from (each with its own up)
CAMERAS = {
    "level": Camera(),
    "pitched": Camera(pitch_deg=25.0),
    "rolled": Camera(pitch_deg=-10.0, roll_deg=30.0),
    "high": Camera(position=(-2.0, 1.0, 2.2), pitch_deg=35.0, roll_deg=-15.0),
}

# postures as body_points arguments
STANDING = dict()
SITTING = dict(hip_deg=(90.0, 90.0), knee_deg=(90.0, 90.0))
SQUATTING = dict(trunk_deg=40.0, hip_deg=(125.0, 125.0), knee_deg=(160.0, 160.0))
KNEELING = dict(knee_deg=(90.0, 90.0))
LYING_TURN = rot((1, 0, 0), -90.0)    # head along -B z, chest up: lying on the back
POSTURES: Dict[str, dict] = {"standing": STANDING, "sitting": SITTING,
                             "squatting": SQUATTING, "kneeling": KNEELING}
