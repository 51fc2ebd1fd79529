"""Multi-camera test scenes from the CMU Panoptic ground truth in ``shared/data/multiview_dev``
(calibrations + 3D people, no images): each camera "sees" the people the way a pose node with a
depth camera would publish them after TF, i.e. 3D keypoints in the world (fusion) frame with
depth noise ``sigma = a * z^2`` along the viewing ray, dropouts, and some model-filled points.

The data is read from the shared folder, never copied; :func:`panoptic_scene` skips the test
when it is missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pytest

from pose_perception.core.layouts import get_layout
from pose_perception.core.types import SOURCE_DEPTH, SOURCE_MODEL, Keypoints, Person

from conftest import SHARED_DATA

# Panoptic coco19 joint -> BlazePose-33 index
COCO19_TO_BP33 = {1: 0, 15: 2, 17: 5, 16: 7, 18: 8, 3: 11, 9: 12, 4: 13, 10: 14, 5: 15, 11: 16,
                  6: 23, 12: 24, 7: 25, 13: 26, 8: 27, 14: 28}


@dataclass
class Camera:
    name: str
    K: np.ndarray          # 3x3
    R: np.ndarray          # world -> camera rotation
    t: np.ndarray          # world -> camera translation [m]
    width: int
    height: int

    @property
    def T_world_cam(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.R.T
        T[:3, 3] = -self.R.T @ self.t
        return T

    def to_cam(self, pw: np.ndarray) -> np.ndarray:
        return pw @ self.R.T + self.t

    def project(self, pc: np.ndarray) -> np.ndarray:
        uv = pc @ self.K.T
        return uv[:, :2] / uv[:, 2:3]

    def sees(self, pw: np.ndarray, max_range: float = 8.0) -> np.ndarray:
        pc = self.to_cam(pw)
        with np.errstate(invalid="ignore", divide="ignore"):
            uv = self.project(pc)
        return (pc[:, 2] > 0.3) & (pc[:, 2] < max_range) & (uv[:, 0] >= 0) & \
            (uv[:, 0] < self.width) & (uv[:, 1] >= 0) & (uv[:, 1] < self.height)


def data_root() -> Path:
    root = SHARED_DATA / "multiview_dev"
    if not root.is_dir():
        pytest.skip(f"multiview_dev data not found at {root} (set POSE_PERCEPTION_DATA)")
    return root


def panoptic_cameras(seq: str, names: Sequence[str]) -> List[Camera]:
    calib = json.loads((data_root() / "panoptic_body3d" / seq /
                        f"calibration_{seq}.json").read_text())
    by_name = {c["name"]: c for c in calib["cameras"]}
    cams = []
    for n in names:
        c = by_name[n]
        cams.append(Camera(n, np.array(c["K"], float), np.array(c["R"], float),
                           np.array(c["t"], float).reshape(3) / 100.0, *c["resolution"]))
    return cams


def panoptic_people(seq: str) -> List[List[np.ndarray]]:
    """Per frame file: the people's BlazePose-33 3D joints in metres (NaN where unknown)."""
    folder = data_root() / "panoptic_body3d" / seq / "hdPose3d_stage1_coco19"
    frames = []
    for f in sorted(folder.glob("body3DScene_*.json")):
        bodies = json.loads(f.read_text())["bodies"]
        people = []
        for b in sorted(bodies, key=lambda b: b["id"]):
            j = np.array(b["joints19"], float).reshape(-1, 4)
            bp = np.full((33, 3), np.nan)
            for c19, i33 in COCO19_TO_BP33.items():
                if j[c19, 3] > 0.1:
                    bp[i33] = j[c19, :3] / 100.0
            people.append(bp)
        frames.append(people)
    return frames


def observe(cam: Camera, gt: np.ndarray, rng: np.random.Generator, depth_a: float = 0.005,
            dropout: float = 0.15, model_fill: float = 0.15, model_sigma: float = 0.06,
            min_joints: int = 5) -> Person | None:
    """What a pose node on ``cam`` would publish for a person at ``gt`` (33, 3), in the world
    frame: None when fewer than ``min_joints`` joints are in view."""
    n = get_layout("blazepose33").size
    known = np.isfinite(gt).all(axis=1)
    seen = known.copy()
    seen[known] = cam.sees(gt[known])
    if seen.sum() < min_joints:
        return None
    pc = np.full((n, 3), np.nan)
    pc[seen] = cam.to_cam(gt[seen])
    z = pc[:, 2]
    sigma = depth_a * z ** 2
    ray = pc / np.linalg.norm(pc, axis=1, keepdims=True)
    noisy = pc + ray * (rng.normal(size=n) * sigma)[:, None] + rng.normal(0, 0.01, (n, 3))
    source = np.where(seen, SOURCE_DEPTH, 0).astype(np.uint8)
    r = rng.random(n)
    model = seen & (r < model_fill)
    noisy[model] = pc[model] + rng.normal(0, model_sigma, (int(model.sum()), 3))
    source[model] = SOURCE_MODEL
    sig = np.where(model, model_sigma, np.hypot(sigma, 0.01))
    valid = seen & (r >= model_fill + dropout) | model
    uv = np.full((n, 2), np.nan)
    uv[seen] = cam.project(pc[seen])
    kp = Keypoints("blazepose33", np.nan_to_num(uv), np.where(seen, 0.9, 0.0))
    kp.init_3d()
    T = cam.T_world_cam
    world = noisy @ T[:3, :3].T + T[:3, 3]
    kp.xyz[valid] = world[valid]
    kp.xyz_valid[:] = valid
    kp.xyz_sigma[valid] = sig[valid]
    kp.xyz_source[valid] = source[valid]
    box = np.array([*uv[seen].min(axis=0), *uv[seen].max(axis=0)])
    return Person(body=kp, box=box, score=0.9)


def look_at(name: str, position, target, f: float = 600.0, width: int = 640,
            height: int = 480) -> Camera:
    """A synthetic camera (optical frame: x right, y down, z forward) in a z-up world."""
    position, target = np.asarray(position, float), np.asarray(target, float)
    z = target - position
    z /= np.linalg.norm(z)
    x = np.cross(z, [0, 0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])                 # rows: camera axes in the world
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    return Camera(name, K, R, -R @ position, width, height)


# Shelf 14 joints (r-ankle, r-knee, r-hip, l-hip, l-knee, l-ankle, r-wrist, r-elbow, r-shoulder,
# l-shoulder, l-elbow, l-wrist, neck, head top) -> BlazePose-33 (the head has no counterpart)
SHELF14_TO_BP33 = {0: 28, 1: 26, 2: 24, 3: 23, 4: 25, 5: 27, 6: 16, 7: 14, 8: 12, 9: 11,
                   10: 13, 11: 15}
SHELF_IMAGE = (1032, 776)


def shelf_cameras() -> List[Camera]:
    """The 5 Shelf cameras (``T`` is the camera centre in millimetres: x_cam = R (X - T))."""
    calib = json.loads((data_root() / "shelf" / "calibration_shelf.json").read_text())
    cams = []
    for name in sorted(calib, key=int):
        c = calib[name]
        K = np.array([[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1.0]])
        R = np.array(c["R"], float)
        centre = np.array(c["T"], float).reshape(3) / 1000.0
        cams.append(Camera(f"shelf{name}", K, R, -R @ centre, *SHELF_IMAGE))
    return cams


def shelf_people() -> List[List[np.ndarray]]:
    """Per frame: the actors' BlazePose-33 3D joints in metres (actors absent from a frame left
    out)."""
    from scipy.io import loadmat
    actors = loadmat(str(data_root() / "shelf" / "actorsGT.mat"))["actor3D"][0]
    n_frames = len(actors[0])
    frames = []
    for k in range(n_frames):
        people = []
        for a in actors:
            j = np.asarray(a[k][0], float)
            if j.shape != (14, 3):
                continue
            bp = np.full((33, 3), np.nan)
            for s14, i33 in SHELF14_TO_BP33.items():
                bp[i33] = j[s14]
            people.append(bp)
        frames.append(people)
    return frames
