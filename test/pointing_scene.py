"""Synthetic RGB-D scenes for the pointing tests.

A depth image ray cast (one ray per pixel, through the camera model, distortion included) from a
floor plane, a back wall, axis-aligned boxes and spheres, in the camera's optical frame (x right,
y down, z forward); and a person (BlazePose-33 from ``synthetic_people.TEMPLATE``) whose arm
points so that the eye-fingertip line passes through a chosen 3D point, with a ``hand21`` hand
(index extended, the other fingers curled, or open), all in 3D and projected with the camera.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pose_perception.core.camera import CameraModel
from pose_perception.core.types import SOURCE_DEPTH, Hand, Keypoints
from synthetic_people import CX, CY, FX, FY, TEMPLATE

CAMERA = CameraModel(640, 480, [[FX, 0, CX], [0, FY, CY], [0, 0, 1]])
FLOOR_Y = 1.22          # the camera 1.22 m above the floor (template feet at hip + 0.92)
ARM_M, HAND_M = 0.56, 0.18   # shoulder -> wrist, wrist -> index tip
SIDES = {"left": (11, 13, 15, 17, 19, 21), "right": (12, 14, 16, 18, 20, 22)}


@dataclass
class Scene:
    floor_y: Optional[float] = FLOOR_Y
    wall_z: Optional[float] = 6.0
    boxes: List[Tuple[Sequence[float], Sequence[float]]] = field(default_factory=list)
    spheres: List[Tuple[Sequence[float], float]] = field(default_factory=list)

    def render(self, camera: CameraModel = CAMERA) -> np.ndarray:
        """(H, W) float32 depth (z, metres), NaN where a pixel's ray meets nothing."""
        g = camera.grid_rays().astype(np.float64)
        d = np.concatenate([g, np.ones(g.shape[:2] + (1,))], axis=2)   # z = 1: t is depth
        z = np.full(g.shape[:2], np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.floor_y is not None:
                t = self.floor_y / d[..., 1]
                z = np.where((d[..., 1] > 0) & (t < z), t, z)
            if self.wall_z is not None:
                z = np.minimum(z, self.wall_z)
            for lo, hi in self.boxes:
                dd = np.where(d == 0, 1e-12, d)
                t1, t2 = np.asarray(lo) / dd, np.asarray(hi) / dd
                near = np.minimum(t1, t2).max(axis=2)
                far = np.maximum(t1, t2).min(axis=2)
                z = np.where((near <= far) & (near > 0) & (near < z), near, z)
            for c, r in self.spheres:
                c = np.asarray(c, np.float64)
                win = _sphere_window(camera, c, r)
                if win is None:
                    continue
                dw, zw = d[win], z[win]
                a = np.sum(dw * dw, axis=2)
                b = dw @ c
                disc = b * b - a * (c @ c - r * r)
                t = (b - np.sqrt(disc)) / a
                z[win] = np.where((disc >= 0) & (t > 0) & (t < zw), t, zw)
        z[~np.isfinite(z)] = np.nan
        return z.astype(np.float32)


def _sphere_window(camera: CameraModel, c: np.ndarray, r: float):
    """Pixel slices holding a sphere's image (padded), or None when it is out of view."""
    if c[2] - r <= 0.05:
        return None
    corners = np.array([[c[0] + sx * 1.5 * r, c[1] + sy * 1.5 * r, c[2] - r]
                        for sx in (-1, 1) for sy in (-1, 1)])
    uv = camera.project(corners)
    lo = np.floor(uv.min(axis=0)).astype(int) - 2
    hi = np.ceil(uv.max(axis=0)).astype(int) + 3
    lo, hi = np.maximum(lo, 0), np.minimum(hi, [camera.width, camera.height])
    if np.any(hi <= lo):
        return None
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def make_keypoints(layout: str, xyz: np.ndarray, camera: CameraModel = CAMERA,
                   sigma: float = 0.01, score: float = 0.9) -> Keypoints:
    kp = Keypoints(layout, camera.project(xyz), np.full(len(xyz), score))
    kp.init_3d()
    kp.xyz = xyz.astype(np.float32)
    kp.xyz_valid[:] = np.all(np.isfinite(xyz), axis=1)
    kp.xyz_sigma[:] = sigma
    kp.xyz_source[kp.xyz_valid] = SOURCE_DEPTH
    return kp


def hand21(wrist: np.ndarray, forward: np.ndarray, open_hand: bool = False) -> np.ndarray:
    """(21, 3) hand joints: the index along ``forward`` to ``wrist + HAND_M * forward``; the
    other fingers curled back to the palm (or, ``open_hand``, as long as the index)."""
    up = np.array([0.0, -1.0, 0.0])
    side = np.cross(forward, up)
    side = _unit(side if np.linalg.norm(side) > 1e-6 else np.cross(forward, [1.0, 0, 0]))
    normal = np.cross(forward, side)
    p = np.zeros((21, 3))

    def at(f, s, n):
        return wrist + f * forward + s * side + n * normal
    p[0] = wrist
    p[1:5] = [at(0.02, 0.02, 0.01), at(0.04, 0.035, 0.015), at(0.06, 0.04, 0.02),
              at(0.075, 0.04, 0.02)]
    p[5:9] = [at(0.09, 0.0, 0.0), at(0.13, 0.0, 0.0), at(0.155, 0.0, 0.0), at(HAND_M, 0.0, 0.0)]
    for k, s in enumerate((-0.02, -0.04, -0.055)):
        base = 9 + 4 * k
        if open_hand:
            p[base:base + 4] = [at(0.09, s, 0), at(0.135, s, 0), at(0.16, s, 0), at(0.185, s, 0)]
        else:
            p[base:base + 4] = [at(0.085, s, 0), at(0.10, s, 0.03), at(0.08, s, 0.04),
                                at(0.065, s, 0.03)]
    return p


def pointing_person(hip, target, side: str = "left", *, elbow_bend_m: float = 0.02,
                    open_hand: bool = False, camera: CameraModel = CAMERA):
    """``(body_xyz (33, 3), hand_xyz (21, 3))``: a person with the hip centre at ``hip`` whose
    ``side`` arm is (almost) straight with the eye-fingertip line through ``target``."""
    xyz = TEMPLATE + np.asarray(hip, np.float64)
    s_i, e_i, w_i, pinky, index, thumb = SIDES[side]
    eye = xyz[[2, 5]].mean(axis=0)
    shoulder = xyz[s_i]
    d = _unit(np.asarray(target, np.float64) - eye)
    # the fingertip on the eye -> target line at arm + hand length from the shoulder
    b = d @ (eye - shoulder)
    c = (eye - shoulder) @ (eye - shoulder) - (ARM_M + HAND_M) ** 2
    tip = eye + (-b + np.sqrt(b * b - c)) * d
    forward = _unit(tip - shoulder)
    wrist = shoulder + ARM_M * forward
    bend = np.cross(forward, [0.0, 0.0, 1.0])
    bend = _unit(bend if np.linalg.norm(bend) > 1e-6 else [1.0, 0, 0])
    xyz[e_i] = shoulder + 0.30 * forward + elbow_bend_m * bend
    xyz[w_i] = wrist
    hand = hand21(wrist, forward, open_hand)
    xyz[index], xyz[pinky], xyz[thumb] = hand[8] - 0.06 * forward, hand[20], hand[4]
    return xyz, hand


def body_and_hands(body_xyz: np.ndarray, hand_xyz: Optional[np.ndarray], side: str = "left",
                   sigma: float = 0.01, camera: CameraModel = CAMERA):
    body = make_keypoints("blazepose33", body_xyz, camera, sigma)
    hands = [] if hand_xyz is None else [
        Hand(make_keypoints("hand21", hand_xyz, camera, sigma), side, 0.95)]
    return body, hands


def person_spheres(body_xyz: np.ndarray, hand_xyz: Optional[np.ndarray]) -> list:
    """Spheres standing for the person's own body in the depth image: head, torso, arms, hand."""
    out = [(body_xyz[0] + [0, 0, 0.05], 0.11)]
    for a, b, r in ((11, 23, 0.12), (12, 24, 0.12), (11, 13, 0.05), (13, 15, 0.045),
                    (12, 14, 0.05), (14, 16, 0.045), (23, 27, 0.08), (24, 28, 0.08)):
        for f in np.linspace(0.0, 1.0, 6):
            out.append(((1 - f) * body_xyz[a] + f * body_xyz[b], r))
    if hand_xyz is not None:
        out += [(p, 0.015) for p in hand_xyz[[5, 6, 7, 8]]] + [(hand_xyz[[0, 9]].mean(0), 0.045)]
    return out
