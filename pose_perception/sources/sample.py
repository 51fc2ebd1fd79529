"""RGB-D frame sources for the demo, the benchmarks and the sample camera: the built-in sample,
recorded frame folders and bags. ROS-free.

**Built-in sample** (:func:`builtin_sample`): a fresh machine has no recordings, so the sample is
made from what package registries ship plus what this module generates:

- the person: matplotlib's ``grace_hopper.jpg`` (``matplotlib/mpl-data/sample_data``, a public
  domain portrait; scikit-image's ``astronaut`` is added when scikit-image happens to be
  installed and ``photos='all'`` is asked for),
- cut out with the person segmentation of ``pose_landmark_full`` (the provisioned model, run once
  on the photo on CPU) and completed into a standing figure (the torso continued to the hips,
  generated legs and shoes in the clothing's colour: a bust floating in a room makes the body
  model guess legs on the floor), pasted into a generated room (wall + tiled floor) seen by an
  ideal pinhole camera 1.5 m above the floor,
- moving: one person walks towards the camera and back (3.4 m -> 0.9 m -> 3.4 m, one cycle over
  the requested frames) while swaying sideways; two or three people stand in lanes 0.8 m apart
  and step in and out (1.5-2.1 m). Each figure is scaled so that its shoulder width is 0.36 m at
  its distance, so apparent size and depth agree,
- a **synthetic depth image**: the room's surfaces and, inside each person's mask, the person's
  distance minus a rounded body relief (up to 0.1 m), plus RealSense-like noise
  (sigma = 0.002 z^2) and a thin invalid (NaN) shadow band at each person's left edge.

Everything is deterministic (fixed seeds; the mask comes from one CPU inference). The sample is
labelled synthetic wherever it can be: :data:`SYNTHETIC_LABEL` is drawn in the colour image, the
camera frame id is :data:`SAMPLE_FRAME_ID`, ``RGBDSequence.synthetic_depth`` is true and its
``label()`` and ``description`` say so. ``extra['true_distance_lateral_m']`` holds the ground
truth: (frames, people, 2) distance z and lateral offset x in metres.

**Recorded folders** (:func:`load_rgbd_dir` in :mod:`pose_perception.sources.sequence`, layouts of
:mod:`pose_perception.sources.rgbd_folder`) and **bags** (:func:`load_bag` in
:mod:`pose_perception.sources.bag`: rosbag2 sqlite3/MCAP or ROS 1, read with the pure-Python
``rosbags`` library). :func:`load_source` picks the right one; :func:`looped` cycles a sequence
with increasing stamps (optionally jumping back, as a looping bag player does). Those names stay
importable from here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from .bag import is_bag, load_bag
from .rgbd_folder import RGBDFrame
from .sequence import RGBDSequence, load_rgbd_dir, looped, sample_frames_summary

SYNTHETIC_LABEL = "built-in sample: SYNTHETIC scene and depth"
SAMPLE_FRAME_ID = "synthetic_sample_camera_optical_frame"
SAMPLE_NAME = "builtin-sample (synthetic depth)"

# scene geometry (metres); camera optical frame: x right, y down, z forward
CAMERA_HEIGHT_M = 1.5          # camera above the floor
# the sample camera's mount on a robot whose base_link lies on the floor below it: looking
# horizontally along x (core.camera_mount; the launch file's and the demo's default)
SAMPLE_CAMERA_MOUNT = f"0 0 {CAMERA_HEIGHT_M:g} 0 0 0"
SHOULDER_HEIGHT_M = 1.42       # shoulder line above the floor
SHOULDER_WIDTH_M = 0.36        # distance between the shoulder keypoints of the pasted person
WALL_DISTANCE_M = 4.5
NEAR_M, FAR_M = 0.9, 3.4       # walking range of the first person
BODY_RELIEF_M = 0.10           # mask centre is this much nearer than its outline
SHADOW_PX = 3                  # invalid depth band at a person's left edge (IR shadow)
HIP_HEIGHT_M = 0.92            # hip line above the floor (the generated legs start there)
HIP_WIDTH_M = 0.34


# ------------------------------------------------------------------------------ the photos
def sample_photos(which: str = "default") -> List[Tuple[str, np.ndarray]]:
    """Photos of people shipped inside installed packages, as ``(name, RGB uint8)``.

    ``which='default'``: matplotlib's Grace Hopper only (identical on every machine);
    ``'all'``: plus scikit-image's astronaut when scikit-image is installed."""
    import matplotlib.cbook as cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read matplotlib's sample photo {path}")
    photos = [("grace_hopper", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))]
    if which == "all":
        try:
            from skimage import data as skdata  # optional; not a dependency
            photos.append(("astronaut", np.ascontiguousarray(skdata.astronaut()[..., :3])))
        except Exception:  # not installed, or its data not available offline
            pass
    elif which != "default":
        raise ValueError(f"photos must be 'default' or 'all', got '{which}'")
    return photos


@dataclass
class PersonCutout:
    """A photo with its person mask and what the compositing needs, in photo pixels."""

    name: str
    rgb: np.ndarray              # (h, w, 3) uint8, completed down to the feet
    alpha: np.ndarray            # (h, w) float32 in [0, 1], soft person mask
    relief_m: np.ndarray         # (h, w) float32 metres the surface is nearer than its outline
    shoulder_mid: np.ndarray     # (2,) photo pixels
    shoulder_px: float           # shoulder keypoint distance in photo pixels


def _segment_person(rgb: np.ndarray, models_dir: Optional[str] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """(person probability (h, w) float32, 33 body keypoints (33, 2)) of the most confident
    person in a photo: the body pipeline finds the person, then ``pose_landmark_full``'s
    segmentation output on that person's crop is warped back to the photo. CPU, deterministic."""
    from ..core.crops import CropSampler, to_tensor
    from ..core.inference import OnnxModel, resolve_model_path
    from ..core.keypoint_pipeline import KeypointConfig, KeypointPipeline

    cfg = KeypointConfig(enable_face=False, providers=("cpu",), threads=1, models_dir=models_dir,
                         max_persons=1)
    res = KeypointPipeline(cfg).process(rgb)
    if not res.persons:
        raise RuntimeError("the body model found nobody in the sample photo: the models do not "
                           "work as expected (run `pose-perception provision` again)")
    person = max(res.persons, key=lambda p: p.score)
    name = (f"{models_dir}/pose_landmark_full.onnx" if models_dir else "pose_landmark_full")
    model = OnnxModel(resolve_model_path(name), providers=("cpu",), threads=1, warmup=False)
    i_seg = model.find_output(where=lambda s: len(s) == 4 and s[-1] == 1)
    size = model.input_shape[1] or 256
    crop = np.empty((size, size, 3), np.uint8)
    tensor = np.empty((1, size, size, 3), np.float32)
    matrix = CropSampler(rgb).crop(person.roi, crop, border="replicate")
    to_tensor(crop, tensor[0])
    logits = model.run(tensor)[i_seg].reshape(size, size).astype(np.float32)
    seg = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
    h, w = rgb.shape[:2]
    prob = cv2.warpAffine(seg, matrix.astype(np.float64), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return prob, person.body.xy.copy()


@functools.lru_cache(maxsize=4)
def person_cutout(photo: str = "grace_hopper", models_dir: Optional[str] = None) -> PersonCutout:
    """The person of one of :func:`sample_photos`, cut out and completed into a standing figure
    (cached per process): the photo's person mask, the torso continued down to the hips, and
    generated legs and shoes in the clothing's colour down to the floor, in true proportions
    (SHOULDER_WIDTH_M sets the scale). A bust floating in a room makes the body model guess
    legs on the floor; a complete figure is what a camera sees."""
    photos = dict(sample_photos("all"))
    if photo not in photos:
        raise ValueError(f"unknown sample photo '{photo}'; available: {sorted(photos)}")
    rgb = photos[photo]
    prob, kp = _segment_person(rgb, models_dir)
    mask = (prob > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        raise RuntimeError(f"empty person segmentation on sample photo '{photo}'")
    mask = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    shoulders = kp[[11, 12]].astype(np.float64)
    shoulder_px = float(np.linalg.norm(shoulders[0] - shoulders[1]))
    if not shoulder_px > 4:
        raise RuntimeError(f"no usable shoulders found on sample photo '{photo}'")
    mid = shoulders.mean(axis=0)
    px_per_m = shoulder_px / SHOULDER_WIDTH_M
    rgb, mask = _complete_figure(rgb, mask, mid, px_per_m)
    # rounded body: nearer in the middle of the mask (distance to its outline, in metres)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5) / px_per_m
    relief = (BODY_RELIEF_M * np.sqrt(np.clip(dist / 0.15, 0.0, 1.0))).astype(np.float32)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.2)
    return PersonCutout(photo, rgb, alpha, relief, mid, shoulder_px)


def _complete_figure(rgb: np.ndarray, mask: np.ndarray, shoulder_mid: np.ndarray,
                     px_per_m: float) -> Tuple[np.ndarray, np.ndarray]:
    """Photo and mask extended down to the floor: the last rows continued to hip height, then
    two legs (trapezoids) and shoes. Heights from SHOULDER_HEIGHT_M; nothing random."""
    h, w = mask.shape
    sx, sy = float(shoulder_mid[0]), float(shoulder_mid[1])
    y_hip = int(round(sy + (SHOULDER_HEIGHT_M - HIP_HEIGHT_M) * px_per_m))
    y_floor = int(round(sy + SHOULDER_HEIGHT_M * px_per_m))
    if y_floor <= h or not mask[-1].any():
        return np.ascontiguousarray(rgb), mask          # the photo already shows the feet
    bottom = mask[-1] > 0
    cloth = np.median(rgb[-8:][mask[-8:] > 0], axis=0) if mask[-8:].any() else np.zeros(3)
    out = np.zeros((y_floor + 2, w, 3), np.uint8)
    out_mask = np.zeros((y_floor + 2, w), np.uint8)
    out[:h], out_mask[:h] = rgb, mask
    y_torso = max(h, y_hip)
    out[h:y_torso] = rgb[-1]
    out_mask[h:y_torso] = bottom
    # torso narrows from the photo's last row to the hips
    cols = np.flatnonzero(bottom)
    left0, right0 = float(cols.min()), float(cols.max())
    hip_half = 0.5 * HIP_WIDTH_M * px_per_m
    for y in range(h, y_torso):
        a = (y - h) / max(1, y_torso - h)
        lo = round((1 - a) * left0 + a * (sx - hip_half))
        hi = round((1 - a) * right0 + a * (sx + hip_half))
        out_mask[y, :max(0, lo)] = 0
        out_mask[y, hi + 1:] = 0
    # legs and shoes
    legs = np.zeros_like(out_mask)
    gap, top_w, bot_w = 0.02 * px_per_m, 0.15 * px_per_m, 0.10 * px_per_m
    y_ankle = y_floor - 0.08 * px_per_m
    for side in (-1, 1):
        x_top = sx + side * (gap / 2 + top_w / 2)
        x_bot = sx + side * (gap / 2 + bot_w / 2 + 0.02 * px_per_m)
        quad = np.array([[x_top - top_w / 2, y_torso - 2], [x_top + top_w / 2, y_torso - 2],
                         [x_bot + bot_w / 2, y_ankle], [x_bot - bot_w / 2, y_ankle]])
        cv2.fillConvexPoly(legs, np.round(quad).astype(np.int32), 1)
        cv2.ellipse(legs, (int(round(x_bot + side * 0.02 * px_per_m)), int(round(y_ankle))),
                    (int(round(0.07 * px_per_m)), int(round(0.05 * px_per_m))), 0, 0, 360, 2, -1)
    rows = np.arange(out.shape[0], dtype=np.float32)[:, None]
    shade = np.clip(1.0 - 0.35 * (rows - y_torso) / max(1.0, y_floor - y_torso), 0.6, 1.0)
    cloth_img = (cloth[None, None, :] * shade[..., None]).astype(np.uint8)
    leg = legs == 1
    out[leg] = np.broadcast_to(cloth_img, out.shape)[leg]
    out[legs == 2] = (25, 22, 20)
    out_mask[legs > 0] = 1
    return np.ascontiguousarray(out), out_mask


# ------------------------------------------------------------------------------- the scene
def sample_camera_info(width: int = 640, height: int = 480) -> Dict[str, Any]:
    """CameraInfo fields of the sample's (ideal, undistorted) pinhole camera."""
    f = 525.0 * width / 640.0
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return {"width": width, "height": height, "distortion_model": "plumb_bob",
            "K": [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0], "D": [0.0] * 5,
            "R": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "P": [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
            "frame_id": SAMPLE_FRAME_ID}


def _room(width: int, height: int, f: float, cx: float, cy: float
          ) -> Tuple[np.ndarray, np.ndarray]:
    """Background colour (H, W, 3) uint8 and depth (H, W) float32: a wall at WALL_DISTANCE_M and
    a tiled floor CAMERA_HEIGHT_M below the camera."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    xn, yn = (u - cx) / f, (v - cy) / f
    with np.errstate(divide="ignore"):
        z_floor = np.where(yn > 1e-6, CAMERA_HEIGHT_M / np.maximum(yn, 1e-6), np.inf)
    floor = z_floor < WALL_DISTANCE_M
    depth = np.where(floor, z_floor, WALL_DISTANCE_M).astype(np.float32)
    rng = np.random.default_rng(7)
    wall = np.empty((height, width, 3), np.float32)
    shade = 1.0 - 0.25 * (v / height)
    wall[...] = np.array([205.0, 196.0, 180.0])[None, None, :] * shade[..., None]
    wall[..., :] += rng.normal(0.0, 3.0, (height, width, 1))
    # floor tiles of 0.5 m in floor coordinates
    fx_m, fz_m = xn * depth, depth.astype(np.float64)
    tiles = ((np.floor(fx_m / 0.5) + np.floor(fz_m / 0.5)) % 2).astype(np.float32)
    floor_rgb = np.stack([120 + 25 * tiles, 104 + 22 * tiles, 88 + 18 * tiles], axis=-1)
    img = np.where(floor[..., None], floor_rgb, wall)
    # skirting board where the floor meets the wall
    board = (~floor) & (yn * WALL_DISTANCE_M > CAMERA_HEIGHT_M - 0.1)
    img[board] = (70.0, 66.0, 60.0)
    return np.clip(img, 0, 255).astype(np.uint8), depth


def _trajectories(people: int, n: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per person: distance z (n,) and lateral offset x (n,) in metres over one cycle.

    One person walks from FAR_M to NEAR_M and back (the safety story). Two or three people
    stand in their own lanes 0.8 m apart and step in and out between 1.5 and 2.1 m (a steady
    multi-person load that never overlaps)."""
    t = np.arange(n) / max(n, 1)
    if people == 1:
        phase = 0.5 - 0.5 * np.cos(2 * np.pi * t)            # 0 -> 1 -> 0
        return [(FAR_M + (NEAR_M - FAR_M) * phase, 0.15 * np.sin(4 * np.pi * t))]
    lanes = [0.0, -0.8, 0.8][:people]
    return [(1.8 - 0.3 * np.sin(2 * np.pi * t + 2.1 * k), x + 0.05 * np.sin(2 * np.pi * t + k))
            for k, x in enumerate(lanes)]


def _paste_matrix(cut: PersonCutout, z: float, x: float, f: float, cx: float, cy: float,
                  mirror: bool) -> np.ndarray:
    """2x3 photo -> frame affine putting the cut-out's shoulder midpoint at (x, shoulder height,
    z) with the shoulder width of SHOULDER_WIDTH_M; ``mirror`` flips it left-right."""
    s = f * SHOULDER_WIDTH_M / (z * cut.shoulder_px)
    u = cx + f * x / z
    v = cy + f * (CAMERA_HEIGHT_M - SHOULDER_HEIGHT_M) / z
    sx = -s if mirror else s
    return np.array([[sx, 0.0, u - sx * cut.shoulder_mid[0]],
                     [0.0, s, v - s * cut.shoulder_mid[1]]])


def builtin_sample(frames: int = 48, people: int = 1, width: int = 640, height: int = 480,
                   fps: float = 15.0, models_dir: Optional[str] = None,
                   photos: str = "default", label: bool = True) -> RGBDSequence:
    """The built-in RGB-D sample: ``frames`` frames (one walk cycle) with ``people`` (1-3)
    people and synthetic depth; see the module docstring. Deterministic."""
    if not 1 <= int(people) <= 3:
        raise ValueError(f"people must be 1, 2 or 3, got {people}")
    if frames < 1 or width < 64 or height < 48 or not fps > 0:
        raise ValueError("need frames >= 1, width >= 64, height >= 48 and fps > 0")
    info = sample_camera_info(width, height)
    f, cx, cy = info["K"][0], info["K"][2], info["K"][5]
    bg_rgb, bg_depth = _room(width, height, f, cx, cy)
    names = [n for n, _ in sample_photos(photos)]
    cuts = [person_cutout(names[k % len(names)], models_dir) for k in range(people)]
    mirror = [(k % 2 == 1) for k in range(people)]
    paths = _trajectories(people, frames)
    out: List[RGBDFrame] = []
    truth = np.zeros((frames, people, 2), np.float32)
    for i in range(frames):
        rgb = bg_rgb.astype(np.float32)
        depth = bg_depth.copy()
        order = sorted(range(people), key=lambda k: -paths[k][0][i])   # far to near
        for k in order:
            z, x = float(paths[k][0][i]), float(paths[k][1][i])
            truth[i, k] = (z, x)
            cut = cuts[k]
            m = _paste_matrix(cut, z, x, f, cx, cy, mirror[k])
            warp = functools.partial(cv2.warpAffine, M=m, dsize=(width, height),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=0)
            a = warp(cut.alpha)
            img = warp(cut.rgb).astype(np.float32)
            rel = warp(cut.relief_m)
            rgb += a[..., None] * (img - rgb)
            body = a > 0.5
            depth[body] = z - rel[body]
            # IR shadow: pixels just left of the person's left outline read nothing
            shadow = body & ~np.roll(body, -SHADOW_PX, axis=1)
            shadow = np.roll(shadow, SHADOW_PX, axis=1) & ~body
            depth[shadow] = np.nan
        rng = np.random.default_rng(1000 + i)
        depth += (rng.standard_normal(depth.shape) * 0.002 * depth * depth).astype(np.float32)
        img8 = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
        if label:
            _draw_label(img8, SYNTHETIC_LABEL)
        out.append(RGBDFrame(f"sample_{i:04d}", img8, depth.astype(np.float32), "32FC1", info,
                             stamp_s=i / fps, depth_stamp_s=i / fps, frame_id=SAMPLE_FRAME_ID))
    desc = (f"{people} person(s) from matplotlib's grace_hopper.jpg cut out with the body "
            f"model's segmentation, walking {FAR_M:.1f} m -> {NEAR_M:.1f} m in a generated room; "
            "depth is SYNTHETIC (generated, not measured)")
    return RGBDSequence(SAMPLE_NAME, out, fps, True, desc,
                        extra={"true_distance_lateral_m": truth})


def _draw_label(img: np.ndarray, text: str) -> None:
    h = img.shape[0]
    scale = max(0.35, h / 1100.0)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (0, h - th - base - 6), (tw + 8, h), (0, 0, 0), -1)
    cv2.putText(img, text, (4, h - base - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 220, 0), 1,
                cv2.LINE_AA)


def load_source(data: Optional[Union[str, Path]] = None, frames: Optional[int] = None,
                people: int = 1, models_dir: Optional[str] = None) -> RGBDSequence:
    """``data`` None: the built-in sample (``frames`` long, default 48); a bag (see
    :func:`load_bag`); else a recorded folder (at most ``frames`` frames)."""
    if data is None:
        return builtin_sample(frames=frames or 48, people=people, models_dir=models_dir)
    if people != 1:
        raise ValueError("--people applies to the built-in sample only")
    if is_bag(data):
        return load_bag(data, max_frames=frames or 300)
    return load_rgbd_dir(data, max_frames=frames)


__all__ = ["RGBDSequence", "PersonCutout", "SYNTHETIC_LABEL", "SAMPLE_FRAME_ID",
           "builtin_sample", "is_bag", "load_bag", "load_rgbd_dir", "load_source", "looped",
           "person_cutout", "sample_camera_info", "sample_photos", "sample_frames_summary"]
