"""Whole-body person detector: SSDLite-MobileNetV2 (COCO people) on the whole image and on tiles.

BlazePose's own detector finds people by their face; this one finds whole bodies, also from
behind, small or partly hidden. The provisioned ONNX graph (``person_detection``) takes a
300x300 RGB image in [-1, 1] (the whole image or a tile *stretched* to 300x300, as the TF Object
Detection API resizes during training) and gives, per anchor, the decoded box (normalised
``y0, x0, y1, x1``) and the background/person probabilities; TF's own NMS is replaced by a hard
NMS here. Detections come back in image pixels. ROS-free.

Tiles: the whole-image pass makes people small in a large image (a 1920x1080 frame shrinks 6.4x
to 300 px wide). Images whose short side is at least ``tile_min_short_side`` x ``tile_px`` get a
grid of overlapping ``tile_px`` squares as extra regions (see :func:`tile_grid`). A box cut by a
tile's inner edge is a part of someone: it is dropped when a box from another region covers
most of it; before the NMS when that box is whole (not cut itself), so that a fragment never
suppresses a better-placed box and then goes itself.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

from .crops import CropSampler, to_tensor, transform_points
from .inference import OnnxModel
from .geometry import covered_fraction, nms
from .ssd import Detection
from .types import RotatedRect

INPUT = 300
PERSON_CLASS = 1


def whole_image_rect(width: int, height: int) -> RotatedRect:
    """The whole image as a (stretched, not letterboxed) region."""
    return RotatedRect(width / 2.0, height / 2.0, float(width), float(height), 0.0)


def tile_grid(width: int, height: int, tile_px: float, min_short_side: float = 1.5,
              overlap: float = 0.25, max_tiles: int = 12) -> List[RotatedRect]:
    """Overlapping square tiles of about ``tile_px`` covering the image, or none when the image's
    short side is below ``min_short_side * tile_px`` (the whole-image pass then sees people
    large enough). Tiles grow when more than ``max_tiles`` would be needed."""
    if tile_px <= 0 or min(width, height) < min_short_side * tile_px:
        return []
    side = float(tile_px)

    def count(length: float, s: float) -> int:
        return max(1, int(math.ceil((length - s * overlap) / (s * (1.0 - overlap)) - 1e-9)))

    while count(width, side) * count(height, side) > max_tiles:
        side *= 1.15
    side = min(side, float(min(width, height)))
    out = []
    nx, ny = count(width, side), count(height, side)
    for j in range(ny):
        for i in range(nx):
            cx = side / 2 + (i * (width - side) / (nx - 1) if nx > 1 else (width - side) / 2)
            cy = side / 2 + (j * (height - side) / (ny - 1) if ny > 1 else (height - side) / 2)
            out.append(RotatedRect(cx, cy, side, side, 0.0))
    return out


class PersonDetector:
    """The whole-body person detector; ``detect`` returns boxes in image pixels, best first
    (``Detection.keypoints`` is empty: the model gives boxes only)."""

    def __init__(self, model: OnnxModel, min_score: float = 0.5, iou_threshold: float = 0.5,
                 tile_px: float = 540.0, tile_min_short_side: float = 1.5,
                 cut_cover: float = 0.6) -> None:
        model.check_input_shape((None, INPUT, INPUT, 3))
        self.model = model
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self.tile_px = tile_px
        self.tile_min_short_side = tile_min_short_side
        self.cut_cover = cut_cover
        self.i_box = model.find_output(where=lambda s: len(s) == 3 and s[-1] == 4)
        self.i_score = model.find_output(where=lambda s: len(s) == 3 and s[-1] == 2)
        self._u8 = np.empty((INPUT, INPUT, 3), np.uint8)
        self._in = np.empty((1, INPUT, INPUT, 3), np.float32)

    def tiles(self, width: int, height: int) -> List[RotatedRect]:
        """The tiles this detector adds for an image of this size (possibly none)."""
        return tile_grid(width, height, self.tile_px, self.tile_min_short_side)

    def detect(self, sampler: CropSampler, regions: Optional[Sequence[RotatedRect]] = None,
               min_score: Optional[float] = None) -> List[Detection]:
        """People in the given regions (default: the whole image), one NMS over all of them."""
        w, h = sampler.width, sampler.height
        regions = list(regions) if regions is not None else [whole_image_rect(w, h)]
        thr = self.min_score if min_score is None else min_score
        boxes, scores, cut, where = [], [], [], []
        for k, r in enumerate(regions):
            b, s = self._candidates(sampler, r, thr)
            boxes.append(b), scores.append(s)
            cut.append(_cut_by_region(b, r, w, h))
            where.append(np.full(len(s), k))
        if not regions or not sum(len(s) for s in scores):
            return []
        b, s, c = np.concatenate(boxes), np.concatenate(scores), np.concatenate(cut)
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w - 1)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h - 1)
        # a fragment must not suppress others in the NMS: cut boxes that a whole (uncut)
        # detection from another region mostly covers go first
        frag = _fragments(b, s, c, np.concatenate(where), self.cut_cover, self.iou_threshold)
        b, s, c = b[~frag], s[~frag], c[~frag]
        keep = nms(b, s, self.iou_threshold)
        b, s, c = b[keep], s[keep], c[keep]
        # a box cut by a tile's inner edge that another box mostly covers is a part of someone
        drop = np.zeros(len(b), bool)
        for i in np.flatnonzero(c):
            others = np.flatnonzero((np.arange(len(b)) != i) & ~drop)
            if others.size and covered_fraction(b[i], b[others]).max() >= self.cut_cover:
                drop[i] = True
        return [Detection(bb, float(ss), np.zeros((0, 2), np.float32))
                for bb, ss, d in zip(b, s, drop) if not d]

    def _candidates(self, sampler: CropSampler, region: RotatedRect, thr: float):
        """Boxes (M, 4) ``x0, y0, x1, y1`` in image pixels and scores (M,) above ``thr``."""
        matrix = sampler.crop(region, self._u8, border="zero")
        to_tensor(self._u8, self._in[0], -1.0, 1.0)
        outs = self.model.run(self._in)
        scores = outs[self.i_score].reshape(-1, 2)[:, PERSON_CLASS]
        idx = np.flatnonzero(scores > thr)
        if idx.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        yxyx = outs[self.i_box].reshape(-1, 4)[idx] * INPUT
        corners = np.stack([yxyx[:, [1, 0]], yxyx[:, [3, 2]]], axis=1)      # (M, 2, 2) x, y
        img = transform_points(matrix, corners)
        return (np.concatenate([img.min(axis=1), img.max(axis=1)], axis=1).astype(np.float32),
                scores[idx].astype(np.float32))


def _fragments(boxes: np.ndarray, scores: np.ndarray, cut: np.ndarray, region: np.ndarray,
               cover: float, iou_threshold: float) -> np.ndarray:
    """(M,) bool: the cut boxes (``cut``) of which at least ``cover`` lies inside a whole
    detection from another region (``region``: each box's region index; the whole detections:
    the uncut boxes an NMS at ``iou_threshold`` keeps): parts of someone whom another region
    sees whole."""
    out = np.zeros(len(boxes), bool)
    whole = np.flatnonzero(~cut)
    if not cut.any() or not whole.size:
        return out
    whole = whole[nms(boxes[whole], scores[whole], iou_threshold)]
    for i in np.flatnonzero(cut):
        others = whole[region[whole] != region[i]]
        if others.size and covered_fraction(boxes[i], boxes[others]).max() >= cover:
            out[i] = True
    return out


def _cut_by_region(boxes: np.ndarray, region: RotatedRect, width: int, height: int,
                   margin_px: float = 2.0) -> np.ndarray:
    """(M,) bool: boxes touching an edge of the (axis-aligned) region that is inside the image,
    i.e. possibly cut by the tile rather than by the image border."""
    if not len(boxes):
        return np.zeros(0, bool)
    x0, x1 = region.cx - region.width / 2, region.cx + region.width / 2
    y0, y1 = region.cy - region.height / 2, region.cy + region.height / 2
    cut = np.zeros(len(boxes), bool)
    if x0 > margin_px:
        cut |= boxes[:, 0] <= x0 + margin_px
    if x1 < width - 1 - margin_px:
        cut |= boxes[:, 2] >= x1 - margin_px
    if y0 > margin_px:
        cut |= boxes[:, 1] <= y0 + margin_px
    if y1 < height - 1 - margin_px:
        cut |= boxes[:, 3] >= y1 - margin_px
    return cut
