"""Keypoint layouts of user-supplied ("bring your own") models, registered with the core registry.

Adds ``coco_wholebody133`` (COCO-WholeBody), ``halpe26`` (Halpe full body), ``wflw98`` (WFLW face),
``openpose18`` (OpenPose COCO body, 18 points) and ``body25`` (OpenPose BODY_25). ``coco17``,
``ibug68`` and ``hand21`` already exist in :mod:`pose_perception.core.layouts`.

Also here: flip pairs for core layouts that lack them (``ibug68``), maps from each body layout to
COCO-17, WFLW-98 to iBUG-68, and the OpenPose limb / part-affinity-field tables.
ROS-free; importing this module registers the layouts (idempotent).
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from ..layouts import (COCO17_EDGES, COCO17_FLIP, COCO17_MAPS, COCO17_NAMES, HAND21_EDGES,
                       HAND21_NAMES, Layout, _ibug68_edges, get_layout, register_layout)
from ..types import Keypoints

Pairs = Tuple[Tuple[int, int], ...]


def _by_name(names: Sequence[str], pairs: Iterable[Tuple[str, str]]) -> Pairs:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


def _lr_flip_pairs(names: Sequence[str]) -> Pairs:
    """Pairs (i, j) where name j is name i with 'left' and 'right' exchanged."""
    pairs = []
    for i, n in enumerate(names):
        if "left" in n:
            other = n.replace("left", "right")
            if other in names:
                pairs.append((i, names.index(other)))
    return tuple(pairs)


def _chain(runs: Iterable[Tuple[int, int, bool]], offset: int = 0) -> Pairs:
    edges: List[Tuple[int, int]] = []
    for a, b, closed in runs:
        edges += [(offset + i, offset + i + 1) for i in range(a, b)]
        if closed:
            edges.append((offset + b, offset + a))
    return tuple(edges)


# --- iBUG-68 (300W) horizontal flip pairs (the core layout has none) -------------------------
IBUG68_FLIP: Pairs = tuple(
    [(i, 16 - i) for i in range(8)]                       # jaw
    + [(17 + i, 26 - i) for i in range(5)]                # brows
    + [(31, 35), (32, 34)]                                # nose bottom
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]   # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)]                      # inner lips
)

# --- COCO-WholeBody 133: body 17, feet 6, face 68 (iBUG order), left hand 21, right hand 21 ---
_FEET = ("left_big_toe", "left_small_toe", "left_heel",
         "right_big_toe", "right_small_toe", "right_heel")
WHOLEBODY_FACE_OFFSET = 23
WHOLEBODY_LEFT_HAND_OFFSET = 91
WHOLEBODY_RIGHT_HAND_OFFSET = 112
COCO_WHOLEBODY133_NAMES = (
    COCO17_NAMES + _FEET + tuple(f"face_{i}" for i in range(68))
    + tuple(f"left_hand_{n}" for n in HAND21_NAMES) + tuple(f"right_hand_{n}" for n in HAND21_NAMES)
)
COCO_WHOLEBODY133_EDGES: Pairs = (
    COCO17_EDGES
    + _by_name(COCO_WHOLEBODY133_NAMES, [
        ("left_ankle", "left_big_toe"), ("left_ankle", "left_small_toe"),
        ("left_ankle", "left_heel"), ("right_ankle", "right_big_toe"),
        ("right_ankle", "right_small_toe"), ("right_ankle", "right_heel")])
    + tuple((a + WHOLEBODY_FACE_OFFSET, b + WHOLEBODY_FACE_OFFSET) for a, b in _ibug68_edges())
    + tuple((a + WHOLEBODY_LEFT_HAND_OFFSET, b + WHOLEBODY_LEFT_HAND_OFFSET)
            for a, b in HAND21_EDGES)
    + tuple((a + WHOLEBODY_RIGHT_HAND_OFFSET, b + WHOLEBODY_RIGHT_HAND_OFFSET)
            for a, b in HAND21_EDGES)
)
COCO_WHOLEBODY133_FLIP: Pairs = (
    COCO17_FLIP + ((17, 20), (18, 21), (19, 22))
    + tuple((a + WHOLEBODY_FACE_OFFSET, b + WHOLEBODY_FACE_OFFSET) for a, b in IBUG68_FLIP)
    + tuple((WHOLEBODY_LEFT_HAND_OFFSET + i, WHOLEBODY_RIGHT_HAND_OFFSET + i) for i in range(21))
)

# --- Halpe 26: COCO-17 + head, neck, hip (pelvis) + feet ------------------------------------
HALPE26_NAMES = COCO17_NAMES + (
    "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
    "left_heel", "right_heel")
HALPE26_EDGES: Pairs = _by_name(HALPE26_NAMES, [
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("left_hip", "hip"),
    ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "hip"),
    ("head", "neck"), ("neck", "hip"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_eye", "right_eye"), ("nose", "left_eye"), ("nose", "right_eye"),
    ("left_eye", "left_ear"), ("right_eye", "right_ear"), ("nose", "neck"),
    ("left_ankle", "left_big_toe"), ("left_ankle", "left_small_toe"), ("left_ankle", "left_heel"),
    ("right_ankle", "right_big_toe"), ("right_ankle", "right_small_toe"),
    ("right_ankle", "right_heel")])

# --- WFLW 98 face points ----------------------------------------------------------------------
WFLW98_NAMES = tuple(
    [f"contour_{i}" for i in range(33)] + [f"brow_{i}" for i in range(18)]
    + [f"nose_{i}" for i in range(9)] + [f"eye_{i}" for i in range(16)]
    + [f"lip_{i}" for i in range(20)] + ["pupil_0", "pupil_1"]
)
WFLW98_EDGES: Pairs = _chain([(0, 32, False), (33, 41, True), (42, 50, True), (51, 54, False),
                              (55, 59, False), (60, 67, True), (68, 75, True), (76, 87, True),
                              (88, 95, True)])
WFLW98_FLIP: Pairs = tuple(
    [(i, 32 - i) for i in range(16)]
    + [(33 + i, 46 - i) for i in range(5)] + [(38 + i, 50 - i) for i in range(4)]
    + [(55, 59), (56, 58)]
    + [(60 + i, 72 - i) for i in range(5)] + [(65, 75), (66, 74), (67, 73)]
    + [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95), (96, 97)]
)
# WFLW-98 index for each iBUG-68 point (the usual correspondence: every other contour point, the
# upper brow arcs, the nose, six of eight points per eye, all mouth points)
WFLW98_TO_IBUG68: Tuple[int, ...] = tuple(
    list(range(0, 33, 2)) + [33, 34, 35, 36, 37, 42, 43, 44, 45, 46] + list(range(51, 60))
    + [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75] + list(range(76, 96))
)

# --- OpenPose COCO-18 and BODY_25 -------------------------------------------------------------
OPENPOSE18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
BODY25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
    "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)
# Limbs the network has part affinity fields for, and the (x, y) PAF channels of each limb, as the
# CMU Caffe models (and their PyTorch / ONNX ports) order them.
OPENPOSE18_LIMBS: Pairs = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
OPENPOSE18_PAF: Pairs = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)
BODY25_LIMBS: Pairs = (
    (1, 0), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (10, 11),
    (8, 12), (12, 13), (13, 14), (0, 15), (0, 16), (15, 17), (16, 18), (11, 24), (11, 22),
    (14, 21), (14, 19), (22, 23), (19, 20),
)
BODY25_PAF: Pairs = (
    (30, 31), (14, 15), (16, 17), (18, 19), (22, 23), (24, 25), (26, 27), (0, 1), (6, 7), (2, 3),
    (4, 5), (8, 9), (10, 11), (12, 13), (32, 33), (34, 35), (36, 37), (38, 39), (50, 51),
    (46, 47), (44, 45), (40, 41), (48, 49), (42, 43),
)
# layout -> (limbs, PAF channel pairs, number of PAF channels the network emits)
OPENPOSE_TABLES: Dict[str, Tuple[Pairs, Pairs, int]] = {
    "openpose18": (OPENPOSE18_LIMBS, OPENPOSE18_PAF, 38),
    "body25": (BODY25_LIMBS, BODY25_PAF, 52),
}

# --- maps to COCO-17 (index in the layout for each COCO-17 joint) ---------------------------
_COCO17_IDENTITY = tuple(range(17))
TO_COCO17: Dict[str, Tuple[int, ...]] = {
    "coco17": _COCO17_IDENTITY,
    "halpe26": _COCO17_IDENTITY,
    "coco_wholebody133": _COCO17_IDENTITY,
    "openpose18": tuple(OPENPOSE18_NAMES.index(n) for n in COCO17_NAMES),
    "body25": tuple(BODY25_NAMES.index(n) for n in COCO17_NAMES),
}

CUSTOM_LAYOUTS: Tuple[Layout, ...] = (
    Layout("coco_wholebody133", COCO_WHOLEBODY133_NAMES, COCO_WHOLEBODY133_EDGES,
           COCO_WHOLEBODY133_FLIP),
    Layout("halpe26", HALPE26_NAMES, HALPE26_EDGES, _lr_flip_pairs(HALPE26_NAMES)),
    Layout("wflw98", WFLW98_NAMES, WFLW98_EDGES, WFLW98_FLIP),
    Layout("openpose18", OPENPOSE18_NAMES, OPENPOSE18_LIMBS[:17],
           _lr_flip_pairs(OPENPOSE18_NAMES)),
    Layout("body25", BODY25_NAMES, BODY25_LIMBS, _lr_flip_pairs(BODY25_NAMES)),
)
# flip pairs for layouts whose core definition has none
_EXTRA_FLIP: Dict[str, Pairs] = {"ibug68": IBUG68_FLIP, "hand21": ()}


def register_custom_layouts() -> None:
    """Register the layouts above (and their COCO-17 maps) with the core registry (safe to call
    repeatedly)."""
    for layout in CUSTOM_LAYOUTS:
        register_layout(layout)
    COCO17_MAPS.update(TO_COCO17)


register_custom_layouts()


def flip_pairs(layout_name: str) -> Pairs:
    """Index pairs swapped by a horizontal flip of the image, for any known layout."""
    layout = get_layout(layout_name)
    return layout.flip_pairs or _EXTRA_FLIP.get(layout_name, ())


def flip_permutation(layout_name: str, pairs: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """``perm`` such that ``values[perm]`` re-labels per-keypoint rows after a horizontal flip."""
    n = get_layout(layout_name).size
    perm = np.arange(n)
    for a, b in (flip_pairs(layout_name) if pairs is None else pairs):
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"flip pair ({a}, {b}) out of range for layout '{layout_name}' ({n})")
        perm[a], perm[b] = b, a
    return perm


def to_coco17(kp: Keypoints) -> Keypoints:
    """COCO-17 view of a body keypoint set of any layout that contains the 17 COCO joints."""
    try:
        mapping = COCO17_MAPS[kp.layout]
    except KeyError:
        raise ValueError(f"no COCO-17 map for layout '{kp.layout}'; known: {sorted(COCO17_MAPS)}") \
            from None
    return kp.remap("coco17", mapping)


def to_ibug68(kp: Keypoints) -> Keypoints:
    """iBUG-68 view of a face keypoint set (``ibug68``, ``wflw98`` or the whole-body face)."""
    if kp.layout == "ibug68":
        return kp
    if kp.layout == "wflw98":
        return kp.remap("ibug68", WFLW98_TO_IBUG68)
    if kp.layout == "coco_wholebody133":
        return kp.remap("ibug68", tuple(range(WHOLEBODY_FACE_OFFSET, WHOLEBODY_FACE_OFFSET + 68)))
    raise ValueError(f"no iBUG-68 map for layout '{kp.layout}'")


__all__ = [
    "BODY25_NAMES", "COCO_WHOLEBODY133_NAMES", "HALPE26_NAMES", "IBUG68_FLIP", "OPENPOSE18_NAMES",
    "OPENPOSE_TABLES", "TO_COCO17", "WFLW98_NAMES", "WFLW98_TO_IBUG68", "flip_pairs",
    "flip_permutation", "register_custom_layouts", "to_coco17", "to_ibug68",
]
