"""Synthetic hands for validating the hand-gesture models without photos (the gesture embedder
takes landmarks, not an image): deterministic poses, normalised as MediaPipe's gesture graph
normalises its inputs. Runs in the converter environment beside ``tflite_to_onnx.py``; imports
nothing from pose_perception."""
import numpy as np


# MediaPipe's 21 hand landmarks: wrist, then thumb, index, middle, ring, pinky (4 points each,
# from the base joint to the tip); per finger its direction from the wrist (radians from "up",
# towards the thumb side negative) and segment lengths in hand-length units
_FINGER_ANGLES = (-0.9, -0.25, 0.0, 0.22, 0.45)
_FINGER_LENGTHS = ((0.13, 0.12, 0.10, 0.08), (0.36, 0.17, 0.10, 0.08), (0.35, 0.19, 0.11, 0.08),
                   (0.33, 0.17, 0.10, 0.08), (0.31, 0.13, 0.08, 0.07))


def _normalise_object(pts: np.ndarray) -> np.ndarray:
    """MediaPipe's LandmarksToMatrix object normalisation: wrist-relative, divided by the larger
    of the x and y extents (+1e-5)."""
    rel = pts - pts[0]
    scale = max(np.ptp(rel[:, 0]), np.ptp(rel[:, 1])) + 1e-5
    return rel / scale


def synthetic_hands(n: int, seed: int = 0):
    """``n`` deterministic hand poses as the gesture embedder's inputs (``hand``: image
    landmarks, ``world_hand``: world landmarks, both normalised as MediaPipe's gesture graph
    does; ``handedness``: the probability of a right hand): fingers with random curls (open to
    a fist), the hand turned in the image plane and tilted in depth, a little noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pts = [np.zeros(3)]
        for angle, lengths in zip(_FINGER_ANGLES, _FINGER_LENGTHS):
            curl = rng.uniform(0.0, 1.5)
            p, direction = np.zeros(3), angle + rng.normal(0.0, 0.05)
            pitch = 0.0
            for k, length in enumerate(lengths):
                if k:
                    pitch += curl
                d = np.array([np.sin(direction) * np.cos(pitch), -np.cos(direction) * np.cos(pitch),
                              -np.sin(pitch)])
                p = p + length * d
                pts.append(p)
        hand = np.asarray(pts)
        roll, tilt = rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.5)
        c, s = np.cos(roll), np.sin(roll)
        ct, st = np.cos(tilt), np.sin(tilt)
        hand = hand @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
        hand = hand @ np.array([[ct, 0, st], [0, 1, 0], [-st, 0, ct]]).T
        world = hand * 0.085 + rng.normal(0.0, 0.002, hand.shape)
        image = hand * rng.uniform(0.1, 0.4) + rng.normal(0.0, 0.003, hand.shape)
        out.append({"hand": _normalise_object(image)[None].astype(np.float32),
                    "handedness": np.array([[rng.uniform(0.0, 1.0)]], np.float32),
                    "world_hand": _normalise_object(world)[None].astype(np.float32)})
    return out
