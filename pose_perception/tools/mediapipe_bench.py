#!/usr/bin/env python3
"""MediaPipe 0.10.14's own speed on a stack of frames, as JSON: the yardstick of ``bench``.

Runs with the oracle environment's interpreter (``pose_perception.provision.ensure_oracle_env()``);
imports nothing from pose_perception. ``pose-perception bench --mediapipe`` writes the frames and
calls it; it can also be run by hand:

    <oracle-python> mediapipe_bench.py FRAMES.npy --frames N --warmup W [--no-face]

FRAMES.npy holds a KxHxWx3 uint8 RGB stack. ``W + N`` frames are processed, cycling through the
stack (frame ``i`` is ``stack[i % K]``, the order ``bench`` feeds its own pipeline); the first
``W`` are warm-up and not measured. Configuration ("pose + head-crop face mesh"), video mode:

- ``mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
  enable_segmentation=False)`` (pose_landmark_full) on the whole frame;
- when it found a body, ``mp.solutions.face_mesh.FaceMesh(static_image_mode=False,
  max_num_faces=1, refine_landmarks=False)`` on a head crop: the square centred on the bounding
  box of pose landmarks 0-10 (nose, eyes, ears, mouth), side twice their larger extent, clipped
  to the image. MediaPipe's face detectors miss the small faces of people a few metres away; the
  crop makes the face large enough for them.

MediaPipe pose finds at most one person per frame. Threads: MediaPipe's desktop (Linux/macOS)
build gives each TFLite model ONE XNNPACK thread by default; its graph scheduler may run
independent calculators concurrently, and ``process()`` waits for each frame's result, so frames
are not pipelined. ``cpu_ms_per_frame`` (process CPU time, all threads) shows what it really used.

Prints one JSON object (last line): ``mediapipe`` (version), ``frames``, ``warmup_frames``, ``fps``,
``latency_ms`` {p50, p95, mean, max} per frame (pose + crop + face mesh), ``stages_mean_ms``
{pose, face}, ``people_per_frame``, ``faces_per_frame``, ``cpu_ms_per_frame``,
``cpu_utilisation`` (CPU time / wall time: ~1 = one core busy), ``threads`` {...}, ``config``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HEAD_POINTS = slice(0, 11)        # BlazePose 0-10: nose, eyes (inner, centre, outer), ears, mouth
HEAD_CROP_SCALE = 2.0             # crop side = this x the larger extent of the head points
MIN_CROP_PX = 16                  # smaller head crops are not meshed


def load_stack(path: str) -> np.ndarray:
    """The KxHxWx3 uint8 RGB frames, fully in memory (no disk reads while timing)."""
    frames = np.load(path)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or not len(frames):
        raise ValueError(f"{path}: expected a KxHxWx3 uint8 RGB stack, got "
                         f"{frames.dtype} {frames.shape}")
    return np.ascontiguousarray(frames)


def head_crop(landmarks, width: int, height: int):
    """``(x0, y0, x1, y1)`` of the square head crop from pose landmarks 0-10, clipped to the
    image; ``None`` when it is smaller than ``MIN_CROP_PX``."""
    pts = np.array([(p.x * width, p.y * height) for p in landmarks.landmark[HEAD_POINTS]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    cx, cy = (lo + hi) / 2.0
    half = HEAD_CROP_SCALE * float(max(hi - lo)) / 2.0
    x0, y0 = max(0, int(round(cx - half))), max(0, int(round(cy - half)))
    x1, y1 = min(width, int(round(cx + half))), min(height, int(round(cy + half)))
    if x1 - x0 < MIN_CROP_PX or y1 - y0 < MIN_CROP_PX:
        return None
    return x0, y0, x1, y1


def _threads_now() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def _pct(a, q):
    return round(float(np.percentile(a, q)), 2) if len(a) else None


def run(frames: np.ndarray, n: int, warm: int, face: bool) -> dict:
    import mediapipe as mp

    sol = mp.solutions
    pose = sol.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                         enable_segmentation=False, min_detection_confidence=0.5,
                         min_tracking_confidence=0.5)
    mesh = sol.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                  refine_landmarks=False, min_detection_confidence=0.5,
                                  min_tracking_confidence=0.5) if face else None
    threads_idle = _threads_now()
    h, w = frames.shape[1:3]
    lat, pose_ms, face_ms, people, faces, crop_px = [], [], [], [], [], []
    t_start = cpu_start = None
    for i in range(warm + n):
        if i == warm:
            t_start, cpu_start = time.perf_counter(), time.process_time()  # all threads
        rgb = frames[i % len(frames)]
        t0 = time.perf_counter()
        res = pose.process(rgb)
        t1 = time.perf_counter()
        found_face = 0
        crop = head_crop(res.pose_landmarks, w, h) \
            if (mesh is not None and res.pose_landmarks is not None) else None
        if crop is not None:
            x0, y0, x1, y1 = crop
            fres = mesh.process(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
            found_face = len(fres.multi_face_landmarks or [])
        t2 = time.perf_counter()
        if i < warm:
            continue
        lat.append((t2 - t0) * 1e3)
        pose_ms.append((t1 - t0) * 1e3)
        face_ms.append((t2 - t1) * 1e3)
        people.append(int(res.pose_landmarks is not None))
        faces.append(found_face)
        if crop is not None:
            crop_px.append(crop[2] - crop[0])
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    threads_busy = _threads_now()
    pose.close()
    if mesh is not None:
        mesh.close()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {
        "mediapipe": mp.__version__,
        "frames": n,
        "warmup_frames": warm,
        "stack_frames": int(len(frames)),
        "image_size": [int(w), int(h)],
        "fps": round(n / wall, 2) if wall > 0 else None,
        "latency_ms": {"p50": _pct(lat, 50), "p95": _pct(lat, 95),
                       "mean": round(float(np.mean(lat)), 2), "max": round(float(np.max(lat)), 2)},
        "stages_mean_ms": {"pose": round(float(np.mean(pose_ms)), 2),
                           "face": round(float(np.mean(face_ms)), 2)},
        "people_per_frame": round(float(np.mean(people)), 3),
        "faces_per_frame": round(float(np.mean(faces)), 3),
        "head_crop_px_median": float(np.median(crop_px)) if crop_px else None,
        "cpu_ms_per_frame": round(cpu / n * 1e3, 2),
        "cpu_utilisation": round(cpu / wall, 2) if wall > 0 else None,
        "threads": {"xnnpack_threads_per_model": 1,
                    "note": "MediaPipe desktop default: one XNNPACK thread per TFLite model; "
                            "graph calculators may run concurrently",
                    "process_threads_idle": threads_idle, "process_threads_end": threads_busy,
                    "cores": os.cpu_count() or 1, "cores_usable": usable},
        "config": {"pose": "Pose(static_image_mode=False, model_complexity=1, "
                           "smooth_landmarks=True, enable_segmentation=False)",
                   "face": ("FaceMesh(static_image_mode=False, max_num_faces=1, "
                            "refine_landmarks=False) on a head crop from pose landmarks 0-10 "
                            f"(square, {HEAD_CROP_SCALE:g}x their extent)") if face else None},
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="MediaPipe 0.10.14 pose + head-crop face mesh speed "
                                             "(video mode) on a .npy stack of RGB frames.")
    ap.add_argument("frames_npy", help="KxHxWx3 uint8 RGB stack")
    ap.add_argument("--frames", type=int, required=True, help="frames to measure")
    ap.add_argument("--warmup", type=int, default=10, help="frames run before measuring")
    ap.add_argument("--no-face", action="store_true", help="pose only")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        ap.error("--frames must be >= 1 and --warmup >= 0")
    try:
        frames = load_stack(args.frames_npy)
    except (OSError, ValueError) as exc:
        print(f"mediapipe_bench: {exc}", file=sys.stderr)
        return 1
    result = run(frames, args.frames, args.warmup, not args.no_face)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
