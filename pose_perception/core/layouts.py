"""Keypoint layouts: names, index constants, skeleton edges and layout-to-layout maps.

ROS-free. Index ``i`` of a layout always means the same joint; messages never use sparse arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Layout:
    name: str
    names: Tuple[str, ...]
    edges: Tuple[Tuple[int, int], ...] = ()
    # index pairs swapped by a horizontal flip (for flip-test and handedness)
    flip_pairs: Tuple[Tuple[int, int], ...] = ()

    @property
    def size(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)


BLAZEPOSE33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
BLAZEPOSE33_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO17_EDGES = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
COCO17_FLIP = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
# COCO keypoint sigmas (OKS), in COCO17 order
COCO17_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0

# BlazePose-33 index for each COCO-17 joint
BLAZEPOSE33_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

# REP-155 (ROS4HRI) hri_msgs/Skeleton2D order (OpenPose COCO-18: the neck is the shoulders' mean)
BLAZEPOSE33_TO_REP155_18 = (0, (11, 12), 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 2, 5,
                            7, 8)

# For each body layout, the index (or indices, averaged) of each COCO-17 joint; layouts registered
# later (custom models) add their own entry.
COCO17_MAPS: Dict[str, Tuple] = {
    "blazepose33": BLAZEPOSE33_TO_COCO17,
    "coco17": tuple(range(17)),
}

HAND21_NAMES = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip",
    "index_dip", "index_tip", "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip", "pinky_mcp", "pinky_pip", "pinky_dip",
    "pinky_tip",
)
HAND21_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19),
    (19, 20),
)

IBUG68_NAMES = tuple(
    [f"jaw_{i}" for i in range(17)] + [f"brow_{i}" for i in range(10)]
    + [f"nose_{i}" for i in range(9)] + [f"eye_{i}" for i in range(12)]
    + [f"lip_{i}" for i in range(20)]
)


def _ibug68_edges() -> Tuple[Tuple[int, int], ...]:
    runs = [(0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
            (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True)]
    edges: List[Tuple[int, int]] = []
    for a, b, closed in runs:
        edges += [(i, i + 1) for i in range(a, b)]
        if closed:
            edges.append((b, a))
    return tuple(edges)


# 468-point face mesh -> iBUG 68 (mean where two vertices are listed); a published correspondence
# (PeizhiYan/Mediapipe_2_Dlib_Landmarks), see docs in README.
FACE468_TO_IBUG68: Tuple[Tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,), (379,),
    (365,), (397, 288), (361,), (323,), (454,), (356,),
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,), (78,),
    (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)

LAYOUTS: Dict[str, Layout] = {
    "blazepose33": Layout("blazepose33", BLAZEPOSE33_NAMES, BLAZEPOSE33_EDGES),
    "coco17": Layout("coco17", COCO17_NAMES, COCO17_EDGES, COCO17_FLIP),
    "hand21": Layout("hand21", HAND21_NAMES, HAND21_EDGES),
    "face468": Layout("face468", tuple(f"v{i}" for i in range(468))),
    "ibug68": Layout("ibug68", IBUG68_NAMES, _ibug68_edges()),
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint layout '{name}'; known: {sorted(LAYOUTS)}") from None


def register_layout(layout: Layout) -> Layout:
    """Add a layout (e.g. for a user's model); re-registering the same name must be identical."""
    old = LAYOUTS.get(layout.name)
    if old is not None and old != layout:
        raise ValueError(f"layout '{layout.name}' already registered with other content")
    LAYOUTS[layout.name] = layout
    return layout


def take(values: np.ndarray, mapping: Sequence[Sequence[int]] | Sequence[int]) -> np.ndarray:
    """Map per-keypoint rows to another layout. ``mapping[j]`` is an index or a tuple of indices
    (rows averaged). Works for (N, ...) arrays; NaNs propagate."""
    out = []
    for m in mapping:
        idx = (m,) if isinstance(m, (int, np.integer)) else tuple(m)
        out.append(values[list(idx)].mean(axis=0) if len(idx) > 1 else values[idx[0]])
    return np.stack(out)
