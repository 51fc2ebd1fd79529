"""``pose-perception eval lift3d``: 3D lifting accuracy on Human3.6M-style ground truth.

Human3.6M has no depth images, so one is rendered from the ground truth the way a depth camera
would see the person: limbs, torso and head as capsules of anthropometric radius around the
ground-truth joints (:data:`BODY_CAPSULES`), z-buffered, so depth is the body *surface* (joints
lie inside); a flat background wall ``--wall-gap`` metres behind the farthest joint; then sensor
effects: Gaussian noise of ``a z^2`` (``--noise-a``), invalid and mixed ("flying") pixels along
depth edges, random dropouts, millimetre quantisation through the ``16UC1`` path. The image is
rendered with the camera's full calibration (plumb_bob distortion), and ground-truth 2D is the
projection of the ground-truth 3D with that model (the file's pinhole 2D differs by < 1.5 px).

The lifting then runs twice: with ground-truth 2D (the 17 H36M joints lifted directly, layout
``h36m17`` with the joint radii :data:`H36M_RADIUS_M`) and with detected 2D (BlazePose-33 from
:class:`pose_perception.core.keypoint_pipeline.KeypointPipeline` on the real photo, lifted with the
model fill, then mapped to H36M with :data:`BLAZEPOSE33_TO_H36M17`). Reported: MPJPE in mm
(absolute, camera frame, no root alignment) per joint and mean over valid joints, and the share
of valid joints. ``--json`` prints one JSON object as the last line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..core.camera import CameraModel
from ..core.depth import depth_to_metres, metres_to_16uc1
from ..core.layouts import Layout, register_layout
from ..core.lifting import Lifter, LiftingConfig, SkeletonSpec, ray_capsule_range
from ..core.types import Keypoints

H36M17_NAMES = ("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
                "left_ankle", "spine", "thorax", "neck_base", "head", "left_shoulder",
                "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")
H36M17_EDGES = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
                (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16))
H36M17 = register_layout(Layout("h36m17", H36M17_NAMES, H36M17_EDGES))

# Depth of each H36M joint centre behind the body surface seen from the front (metres, adult
# anthropometry): pelvis and spine at mid-depth of a ~0.24 m deep trunk, thorax (sternum top)
# 0.10, hips 0.09, knees 0.05, ankles 0.035, neck/nose 0.08 (the chin and lower face are in
# front of it), head centre 0.09, shoulders 0.06, elbows 0.04, wrists 0.03.
H36M_RADIUS_M = np.array([0.12, 0.09, 0.05, 0.035, 0.09, 0.05, 0.035, 0.12, 0.10, 0.08, 0.09,
                          0.06, 0.04, 0.03, 0.06, 0.04, 0.03])
H36M_ANCHORS = (0, 1, 4, 7, 8, 11, 14)
# Bones for occlusion reasoning: (a, b, length / stature from Human3.6M's mean skeleton
# (1.72 m), mirror bone, radius m), plus the hip line, the trunk's sides and the head sphere.
H36M_SKELETON = SkeletonSpec(
    bones=((0, 1, 0.077, 3, 0.09), (1, 2, 0.257, 4, 0.07), (2, 3, 0.264, 5, 0.045),
           (0, 4, 0.077, 0, 0.09), (4, 5, 0.257, 1, 0.07), (5, 6, 0.264, 2, 0.045),
           (0, 7, 0.135, -1, 0.12), (7, 8, 0.149, -1, 0.12), (8, 9, 0.070, -1, 0.055),
           (9, 10, 0.067, -1, 0.06), (8, 11, 0.088, 13, 0.06), (11, 12, 0.162, 14, 0.045),
           (12, 13, 0.147, 15, 0.035), (8, 14, 0.088, 10, 0.06), (14, 15, 0.162, 11, 0.045),
           (15, 16, 0.147, 12, 0.035)),
    parts=(((1,), (4,), 0.09), ((4,), (11,), 0.065), ((1,), (14,), 0.065),
           ((10,), (10,), 0.10)),
    derived=((0, (1, 4)),))  # Human3.6M's pelvis is the midpoint of its hip joints

# BlazePose-33 -> H36M-17; tuples are averaged (in 3D after lifting). Spine = trunk centre
# (mean of shoulders and hips), thorax = shoulder centre, neck base = halfway between the
# shoulder centre and the ears' centre, head = ears' centre (head centre at eye level).
BLAZEPOSE33_TO_H36M17: Tuple[Tuple[int, ...], ...] = (
    (23, 24), (24,), (26,), (28,), (23,), (25,), (27,), (11, 12, 23, 24), (11, 12),
    (11, 12, 7, 8), (7, 8), (11,), (13,), (15,), (12,), (14,), (16,))

# Capsules of the rendered body: (joint a, joint b, radius m); a == b is a sphere. Adult
# anthropometry with clothes: trunk ~0.24 m deep (centre line pelvis-spine-thorax) and its sides
# (hip to shoulder), hip line, thighs ~0.14 m thick, shanks ~0.09, shoulders, upper arms ~0.09,
# forearms ~0.07, neck ~0.11, head a 0.20 m sphere round the head joint; the hand is a capsule
# continuing the forearm by 8 cm past the wrist.
BODY_CAPSULES: Tuple[Tuple[int, int, float], ...] = (
    (0, 7, 0.12), (7, 8, 0.12), (1, 4, 0.09), (4, 11, 0.065), (1, 14, 0.065),
    (1, 2, 0.07), (2, 3, 0.045), (4, 5, 0.07), (5, 6, 0.045),
    (8, 11, 0.06), (8, 14, 0.06), (11, 12, 0.045), (12, 13, 0.035), (14, 15, 0.045),
    (15, 16, 0.035), (8, 9, 0.055), (9, 10, 0.06), (10, 10, 0.10),
)
HAND_LENGTH_M, HAND_RADIUS_M = 0.08, 0.03


# --------------------------------------------------------------------------------- rendering
def capsules_for_joints(joints: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray, float]]:
    """Capsules (a, b, r) of :data:`BODY_CAPSULES` plus the two hands, for H36M-17 joints."""
    caps = [(joints[a], joints[b], r) for a, b, r in BODY_CAPSULES]
    for elbow, wrist in ((12, 13), (15, 16)):
        d = joints[wrist] - joints[elbow]
        d = d / max(np.linalg.norm(d), 1e-9)
        caps.append((joints[wrist], joints[wrist] + HAND_LENGTH_M * d, HAND_RADIUS_M))
    return caps


def render_depth(camera: CameraModel, capsules, wall_z: Optional[float] = None) -> np.ndarray:
    """Ideal depth image (float32 metres, z along the optical axis) of capsules in front of an
    optional fronto-parallel wall at ``wall_z``; NaN where nothing is seen. Uses the camera's
    full model (distortion included)."""
    h, w = camera.height, camera.width
    rays = camera.grid_rays()
    depth = np.full((h, w), np.inf)
    if wall_z is not None:
        depth[:] = wall_z
    for a, b, r in capsules:
        a, b = np.asarray(a, float), np.asarray(b, float)
        lo, hi = np.minimum(a, b) - r, np.maximum(a, b) + r
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (max(lo[2], 0.05), max(hi[2], 0.05))])
        uv = camera.project(corners)
        if not np.all(np.isfinite(uv)):
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            x0, y0 = np.floor(uv.min(axis=0)).astype(int) - 3
            x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 4
            x0, x1 = max(0, x0), min(w, x1)
            y0, y1 = max(0, y0), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            continue
        rr = rays[y0:y1, x0:x1].reshape(-1, 2).astype(np.float64)
        d = np.concatenate([rr, np.ones((rr.shape[0], 1))], axis=1)
        norm = np.linalg.norm(d, axis=1)
        t = ray_capsule_range(d / norm[:, None], a, b, r)
        z = (t / norm).reshape(y1 - y0, x1 - x0)
        sub = depth[y0:y1, x0:x1]
        np.minimum(sub, z, out=sub)
    depth[~np.isfinite(depth)] = np.nan
    return depth.astype(np.float32)


def add_sensor_effects(depth: np.ndarray, rng: np.random.Generator, noise_a: float = 0.001,
                       edge_jump_m: float = 0.1, edge_invalid: float = 0.3,
                       edge_mixed: float = 0.2, dropout: float = 0.01) -> np.ndarray:
    """Make an ideal depth image look measured: pixels at depth edges (3x3 range above
    ``edge_jump_m``) become invalid or mixed (between both surfaces) with the given
    probabilities, Gaussian noise of sigma ``noise_a z^2``, random dropouts, then millimetre
    quantisation via 16UC1 (returns float32 metres, NaN = invalid)."""
    d = depth.astype(np.float64)
    valid = np.isfinite(d)
    k = np.ones((3, 3), np.uint8)
    mx = cv2.dilate(np.where(valid, d, 0.0), k)
    mn = cv2.erode(np.where(valid, d, 1e6), k)
    edge = valid & (mx - mn > edge_jump_m) & (mn < 1e5)
    u = rng.random(d.shape)
    d = np.where(edge & (u < edge_invalid), np.nan, d)
    mixed = edge & (u >= edge_invalid) & (u < edge_invalid + edge_mixed)
    d = np.where(mixed, mn + rng.random(d.shape) * (mx - mn), d)
    d = d + rng.standard_normal(d.shape) * noise_a * d * d
    d[rng.random(d.shape) < dropout] = np.nan
    return depth_to_metres(metres_to_16uc1(d), "16UC1")


# -------------------------------------------------------------------------------- evaluation
def camera_from_h36m(cam: Dict) -> CameraModel:
    k1, k2, k3 = cam.get("radial_k", (0.0, 0.0, 0.0))
    p1, p2 = cam.get("tangential_p", (0.0, 0.0))
    K = [[cam["fx"], 0.0, cam["cx"]], [0.0, cam["fy"], cam["cy"]], [0.0, 0.0, 1.0]]
    return CameraModel(cam["width"], cam["height"], K, [k1, k2, p1, p2, k3], "plumb_bob")


def lifter_for_h36m(config: Optional[LiftingConfig] = None) -> Lifter:
    cfg = config or LiftingConfig()
    cfg.radii.setdefault("h36m17", H36M_RADIUS_M)
    cfg.anchors.setdefault("h36m17", H36M_ANCHORS)
    cfg.skeletons.setdefault("h36m17", H36M_SKELETON)
    return Lifter(cfg)


def _errors_mm(pred: Keypoints, gt: np.ndarray) -> np.ndarray:
    e = np.linalg.norm(pred.xyz.astype(np.float64) - gt, axis=1) * 1000.0
    return np.where(pred.xyz_valid, e, np.nan)


def _summary(errs: List[np.ndarray]) -> Dict:
    e = np.stack(errs)  # (frames, 17), NaN = invalid
    valid = np.isfinite(e)
    per_joint = {}
    for j, name in enumerate(H36M17_NAMES):
        col = e[:, j][valid[:, j]]
        per_joint[name] = round(float(col.mean()), 1) if col.size else None
    return {"mpjpe_mm": round(float(e[valid].mean()), 1) if valid.any() else None,
            "valid_fraction": round(float(valid.mean()), 4),
            "per_joint_mm": per_joint}


def _pick_person(persons, gt_xy: np.ndarray):
    """The detected person (with landmarks: box-only people have no joints) whose box holds
    most of the ground-truth 2D joints (then the largest)."""
    best, best_key = None, None
    for p in persons:
        if p.box_only:
            continue
        x0, y0, x1, y1 = p.box
        inside = np.sum((gt_xy[:, 0] >= x0) & (gt_xy[:, 0] <= x1) & (gt_xy[:, 1] >= y0)
                        & (gt_xy[:, 1] <= y1))
        key = (inside, (x1 - x0) * (y1 - y0))
        if best_key is None or key > best_key:
            best, best_key = p, key
    return best


def evaluate(data_path: Path, detected: bool = True, noise_a: float = 0.001,
             wall_gap_m: float = 1.0, seed: int = 0,
             config: Optional[LiftingConfig] = None,
             detector_min_score: Optional[float] = None) -> Dict:
    """Run the evaluation; returns the JSON-ready result dict."""
    data = json.loads(Path(data_path).read_text())
    names = tuple(data.get("joint_names", H36M17_NAMES))
    if names != H36M17_NAMES:
        raise ValueError(f"unexpected joint order in {data_path}: {names}")
    lifter = lifter_for_h36m(config)
    rng = np.random.default_rng(seed)
    pipeline = None
    if detected:
        from ..core.keypoint_pipeline import KeypointConfig, KeypointPipeline
        kcfg = KeypointConfig()
        if detector_min_score is not None:
            kcfg.detector_min_score = detector_min_score
        pipeline = KeypointPipeline(kcfg)
    gt_errs, det_errs, oracle_errs, frames_info = [], [], [], []
    for fr in data["frames"]:
        cam = camera_from_h36m(fr["camera"])
        gt = np.asarray(fr["joints_3d_camera_m"], dtype=np.float64)
        gt_xy = cam.project(gt)
        file_xy = np.asarray(fr["joints_2d_px"], dtype=np.float64)
        ideal = render_depth(cam, capsules_for_joints(gt), float(gt[:, 2].max()) + wall_gap_m)
        depth = add_sensor_effects(ideal, rng, noise_a) if noise_a >= 0 else ideal
        box_h = float(np.ptp(gt_xy[:, 1]))
        kps = Keypoints("h36m17", gt_xy, np.ones(17))
        lifter.lift_keypoints(kps, depth, cam, person_scale_px=box_h)
        gt_errs.append(_errors_mm(kps, gt))
        info = {"image": fr.get("image"),
                "gt2d_vs_file_px": round(float(np.abs(gt_xy - file_xy).max()), 2)}
        if pipeline is not None:
            img = cv2.imread(str(Path(data_path).parent / fr["image"]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read image {fr['image']}")
            pipeline.reset()  # independent photos, not a video
            result = pipeline.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            person = _pick_person(result.persons, gt_xy)
            if person is None:
                det_errs.append(np.full(17, np.nan))
                info["detected"] = False
            else:
                box = np.asarray(person.box, float)
                lifter.lift_keypoints(person.body, depth, cam, float(box[3] - box[1]),
                                      world=person.world)
                h36 = person.body.remap("h36m17", BLAZEPOSE33_TO_H36M17)
                det_errs.append(_errors_mm(h36, gt))
                # the same 2D at the true depth: the part of the error that is the 2D's
                oracle = Keypoints("h36m17", h36.xy, h36.score)
                oracle.init_3d()
                oracle.xyz[:] = cam.backproject(cam.undistort_points(h36.xy), gt[:, 2])
                oracle.xyz_valid[:] = np.isfinite(oracle.xyz[:, 0])
                oracle_errs.append(_errors_mm(oracle, gt))
                info["detected"] = True
                info["model_filled"] = int(np.sum(person.body.xyz_source == 2))
        frames_info.append(info)
    out = {"gt2d": _summary(gt_errs)}
    if detected:
        out["detected2d"] = _summary(det_errs)
        out["detected2d"]["true_depth_mpjpe_mm"] = (
            _summary(oracle_errs)["mpjpe_mm"] if oracle_errs else None)
    out["frames"] = frames_info
    out["settings"] = {"noise_a": noise_a, "wall_gap_m": wall_gap_m, "seed": seed}
    return out


def _table(res: Dict) -> str:
    cols = [k for k in ("gt2d", "detected2d") if k in res]
    lines = [f"{'joint':<16}" + "".join(f"{c + ' (mm)':>18}" for c in cols)]
    for name in H36M17_NAMES:
        row = f"{name:<16}"
        for c in cols:
            v = res[c]["per_joint_mm"][name]
            row += f"{'invalid' if v is None else f'{v:.1f}':>18}"
        lines.append(row)
    lines.append(f"{'MPJPE':<16}" + "".join(
        f"{'n/a' if res[c]['mpjpe_mm'] is None else format(res[c]['mpjpe_mm'], '.1f'):>18}"
        for c in cols))
    lines.append(f"{'valid joints':<16}" + "".join(
        f"{100 * res[c]['valid_fraction']:>17.1f}%" for c in cols))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="pose-perception eval lift3d", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--data", required=True, help="h36m_3d.json (images relative to it)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as last line")
    ap.add_argument("--gt-only", action="store_true",
                    help="skip the detected-2D run (no models needed)")
    ap.add_argument("--noise-a", type=float, default=0.001,
                    help="depth noise sigma = a z^2 of the rendered sensor (negative: ideal)")
    ap.add_argument("--wall-gap", type=float, default=1.0,
                    help="background wall distance behind the farthest joint (m)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detector-min-score", type=float, default=None,
                    help="person detector threshold (default: the keypoint stage's)")
    args = ap.parse_args(argv)
    try:
        res = evaluate(Path(args.data), detected=not args.gt_only, noise_a=args.noise_a,
                       wall_gap_m=args.wall_gap, seed=args.seed,
                       detector_min_score=args.detector_min_score)
    except (OSError, ValueError, KeyError, ImportError) as e:
        print(f"eval lift3d: {e}", file=sys.stderr)
        return 2
    print(_table(res))
    if args.json:
        print(json.dumps({k: v for k, v in res.items()}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
