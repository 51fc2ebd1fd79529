#!/usr/bin/env python3
"""MediaPipe 0.10.14's own results on images, as JSON: the reference ("oracle") for the tests.

Runs with the oracle environment's interpreter (``pose_perception.provision.ensure_oracle_env()``);
imports nothing from pose_perception.

    <oracle-python> mediapipe_oracle.py IMAGE [IMAGE ...] [--tasks pose,face_detection,...]

IMAGE is a file OpenCV can read (colour) or a ``.npy`` holding an HxWx3 uint8 RGB array.
Uses the legacy ``mediapipe.solutions`` API in static-image mode (each image independent):
- ``pose``: Pose(model_complexity=1, i.e. pose_landmark_full), 33 landmarks;
- ``face_detection``: FaceDetection short range (model 0) and full range (model 1): score,
  box and 6 keypoints;
- ``face_mesh``: FaceMesh(refine_landmarks=False, max_num_faces=4), 468 landmarks per face;
- ``hands``: Hands(model_complexity=1, max_num_hands=2), 21 landmarks + handedness.

Pixel coordinates are MediaPipe's normalised coordinates times the image width / height
(``x_px = x * W``), exactly as MediaPipe defines them; ``z`` is passed through unchanged.
Prints one JSON object: ``{"mediapipe": version, "images": [{"path", "width", "height", ...}]}``.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

TASKS = ("pose", "face_detection", "face_mesh", "hands")


def load_rgb(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        img = np.load(path)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{path}: expected an HxWx3 uint8 RGB array, "
                             f"got {img.dtype} {img.shape}")
        return np.ascontiguousarray(img)
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _landmarks(lms, w: int, h: int, with_vis: bool = False) -> dict:
    pts = lms.landmark
    out = {"xy_px": [[p.x * w, p.y * h] for p in pts], "z": [p.z for p in pts]}
    if with_vis:
        out["visibility"] = [p.visibility for p in pts]
        out["presence"] = [p.presence for p in pts]
    return out


def run_pose(sol, rgb):
    h, w = rgb.shape[:2]
    with sol.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                       min_detection_confidence=0.5) as pose:
        res = pose.process(rgb)
    if res.pose_landmarks is None:
        return None
    out = _landmarks(res.pose_landmarks, w, h, with_vis=True)
    if res.pose_world_landmarks is not None:
        out["world_xyz"] = [[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark]
    return out


def run_face_detection(sol, rgb):
    h, w = rgb.shape[:2]
    out = {}
    for model, key in ((0, "short_range"), (1, "full_range")):
        with sol.face_detection.FaceDetection(model_selection=model,
                                              min_detection_confidence=0.5) as fd:
            res = fd.process(rgb)
        faces = []
        for det in res.detections or []:
            rel = det.location_data.relative_bounding_box
            faces.append({
                "score": float(det.score[0]),
                "box_px": [rel.xmin * w, rel.ymin * h, rel.width * w, rel.height * h],
                "keypoints_px": [[k.x * w, k.y * h]
                                 for k in det.location_data.relative_keypoints],
            })
        out[key] = faces
    return out


def run_face_mesh(sol, rgb):
    h, w = rgb.shape[:2]
    with sol.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=False,
                                min_detection_confidence=0.5) as fm:
        res = fm.process(rgb)
    return [_landmarks(f, w, h) for f in res.multi_face_landmarks or []]


def run_hands(sol, rgb):
    h, w = rgb.shape[:2]
    with sol.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=1,
                         min_detection_confidence=0.5) as hands:
        res = hands.process(rgb)
    out = []
    for lms, hd in zip(res.multi_hand_landmarks or [], res.multi_handedness or []):
        item = _landmarks(lms, w, h)
        item["handedness"] = hd.classification[0].label
        item["handedness_score"] = float(hd.classification[0].score)
        out.append(item)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Print MediaPipe 0.10.14's results as JSON.")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--tasks", default=",".join(TASKS),
                    help=f"comma-separated subset of {','.join(TASKS)}")
    args = ap.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        ap.error(f"unknown task(s): {', '.join(sorted(unknown))}")

    import mediapipe as mp

    sol = mp.solutions
    runners = {"pose": run_pose, "face_detection": run_face_detection,
               "face_mesh": run_face_mesh, "hands": run_hands}
    results = []
    for path in args.images:
        rgb = load_rgb(path)
        item = {"path": path, "width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
        for t in tasks:
            item[t] = runners[t](sol, rgb)
        results.append(item)
    json.dump({"mediapipe": mp.__version__, "images": results}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
