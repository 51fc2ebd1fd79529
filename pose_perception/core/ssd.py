"""Single-shot (SSD) detectors as MediaPipe configures them: anchors, decoding, weighted NMS.

The BlazePose, BlazeFace and palm detectors regress, per anchor, ``[cx, cy, w, h, kx0, ky0, ...]``
in input pixels relative to the anchor centre, plus one score logit. ``SsdDetector`` runs such a
model on the whole image (letterboxed, i.e. a square crop around the image with a constant
border) or on any rotated region of interest, and returns detections in image pixels. ROS-free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .crops import (CropSampler, crop_to_image_matrix, letterbox_rect, to_tensor,
                    transform_points)
from .geometry import box_iou
from .inference import OnnxModel
from .types import RotatedRect


# ---------------------------------------------------------------------------- anchors
@dataclass(frozen=True)
class AnchorOptions:
    """MediaPipe ``SsdAnchorsCalculatorOptions`` (the subset these models use)."""

    input_size: int
    strides: Tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    offset: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0   # 0 = one anchor per cell
    aspect_ratios: Tuple[float, ...] = (1.0,)
    fixed_anchor_size: bool = True


POSE_ANCHORS = AnchorOptions(224, (8, 16, 32, 32, 32))
FACE_SHORT_ANCHORS = AnchorOptions(128, (8, 16, 16, 16))
FACE_FULL_ANCHORS = AnchorOptions(192, (4,), interpolated_scale_aspect_ratio=0.0)
PALM_ANCHORS = AnchorOptions(192, (8, 16, 16, 16), min_scale=0.1484375, max_scale=0.75)


def _scale(opts: AnchorOptions, i: int, n: int) -> float:
    if n == 1:
        return (opts.min_scale + opts.max_scale) * 0.5
    return opts.min_scale + (opts.max_scale - opts.min_scale) * i / (n - 1.0)


def generate_anchors(opts: AnchorOptions) -> np.ndarray:
    """(N, 4) float32 anchors ``[cx, cy, w, h]`` normalised to the input (MediaPipe order:
    layers with equal consecutive strides merged, then rows, columns, anchors per cell)."""
    n_layers = len(opts.strides)
    out: List[Tuple[float, float, float, float]] = []
    layer = 0
    while layer < n_layers:
        sizes: List[Tuple[float, float]] = []
        last = layer
        while last < n_layers and opts.strides[last] == opts.strides[layer]:
            scale = _scale(opts, last, n_layers)
            for ar in opts.aspect_ratios:
                sizes.append((scale / math.sqrt(ar), scale * math.sqrt(ar)))  # (h, w)
            if opts.interpolated_scale_aspect_ratio > 0:
                nxt = 1.0 if last == n_layers - 1 else _scale(opts, last + 1, n_layers)
                s = math.sqrt(scale * nxt)
                ar = opts.interpolated_scale_aspect_ratio
                sizes.append((s / math.sqrt(ar), s * math.sqrt(ar)))
            last += 1
        stride = opts.strides[layer]
        fm = int(math.ceil(opts.input_size / stride))
        for y in range(fm):
            for x in range(fm):
                cx, cy = (x + opts.offset) / fm, (y + opts.offset) / fm
                for h, w in sizes:
                    out.append((cx, cy, 1.0, 1.0) if opts.fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(out, np.float32)


# ---------------------------------------------------------------------------- decoding
def sigmoid_clip(logits: np.ndarray, clip: float = 100.0) -> np.ndarray:
    """MediaPipe's detection score: sigmoid of the logit clipped to +-clip."""
    x = np.clip(np.asarray(logits, np.float64), -clip, clip)
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def decode(raw: np.ndarray, anchors: np.ndarray, input_size: int,
           num_keypoints: int) -> Tuple[np.ndarray, np.ndarray]:
    """Regressor rows (M, 4 + 2K) of the given anchors (M, 4) -> boxes (M, 4) ``x0, y0, x1,
    y1`` and keypoints (M, K, 2), normalised to the detector input ([0, 1])."""
    raw = np.asarray(raw, np.float32)
    aw, ah = anchors[:, 2:3], anchors[:, 3:4]
    acx, acy = anchors[:, 0:1], anchors[:, 1:2]
    cx = raw[:, 0:1] / input_size * aw + acx
    cy = raw[:, 1:2] / input_size * ah + acy
    w = raw[:, 2:3] / input_size * aw
    h = raw[:, 3:4] / input_size * ah
    boxes = np.concatenate([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = raw[:, 4:4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2) / input_size
    kp = kp * np.stack([aw, ah], axis=-1) + np.stack([acx, acy], axis=-1)
    return boxes, kp


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float = 0.3, max_detections: Optional[int] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression.

    Repeatedly takes the best remaining detection and every remaining one overlapping it by
    IoU > ``iou_threshold``; outputs their score-weighted mean box and keypoints with the best
    one's score. Returns (boxes, scores, keypoints) sorted by score."""
    order = np.argsort(-scores, kind="stable")
    out_b, out_s, out_k = [], [], []
    while order.size:
        top = order[0]
        iou = box_iou(boxes[top], boxes[order])
        group = order[iou > iou_threshold]
        if group.size == 0:          # degenerate (empty) box: keep it alone
            group = order[:1]
        w = scores[group].astype(np.float64)
        w = w / w.sum()
        out_b.append((boxes[group] * w[:, None]).sum(0))
        out_k.append((keypoints[group] * w[:, None, None]).sum(0))
        out_s.append(scores[top])
        order = order[~np.isin(order, group)]
        if max_detections and len(out_s) >= max_detections:
            break
    k = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_s:
        return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                np.zeros((0, k, 2), np.float32))
    return (np.asarray(out_b, np.float32), np.asarray(out_s, np.float32),
            np.asarray(out_k, np.float32))


# ---------------------------------------------------------------------------- letterbox
def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """2x3 affine from the ``size x size`` letterboxed detector input back to the image (the
    inverse of the letterbox); see ``crops.letterbox_rect``."""
    return crop_to_image_matrix(letterbox_rect(width, height), size, size)


# ---------------------------------------------------------------------------- detector
@dataclass
class Detection:
    """One detection in image pixels."""

    box: np.ndarray          # (4,) x0, y0, x1, y1 (axis-aligned bounds of the projected box)
    score: float
    keypoints: np.ndarray    # (K, 2)


@dataclass(frozen=True)
class DetectorSpec:
    """How to run and decode one SSD model."""

    anchors: AnchorOptions
    num_keypoints: int
    value_range: Tuple[float, float]     # input pixel range, e.g. (-1, 1)
    min_score: float = 0.5
    iou_threshold: float = 0.3


POSE_DETECTOR = DetectorSpec(POSE_ANCHORS, 4, (-1.0, 1.0))
FACE_SHORT_DETECTOR = DetectorSpec(FACE_SHORT_ANCHORS, 6, (-1.0, 1.0))
FACE_FULL_DETECTOR = DetectorSpec(FACE_FULL_ANCHORS, 6, (-1.0, 1.0), min_score=0.6)
PALM_DETECTOR = DetectorSpec(PALM_ANCHORS, 7, (0.0, 1.0))


class SsdDetector:
    """An SSD model with its anchors; ``detect`` returns detections in image pixels.

    The input is a square crop (zero border, as MediaPipe's letterbox) of the whole image or of
    a rotated region; buffers are allocated once."""

    def __init__(self, model: OnnxModel, spec: DetectorSpec) -> None:
        self.model, self.spec = model, spec
        size = spec.anchors.input_size
        self.size = size
        model.check_input_shape((None, size, size, 3))
        self.anchors = generate_anchors(spec.anchors)
        n, c = len(self.anchors), 4 + 2 * spec.num_keypoints
        self.i_box = model.find_output(
            where=lambda s: len(s) >= 2 and s[-1] == c and s[-2] in (n, None))
        self.i_score = model.find_output(
            where=lambda s: len(s) >= 2 and s[-1] == 1 and s[-2] in (n, None))
        self._u8 = np.empty((size, size, 3), np.uint8)
        self._in = np.empty((1, size, size, 3), np.float32)

    def detect(self, sampler: CropSampler, roi: Optional[RotatedRect] = None,
               min_score: Optional[float] = None, max_detections: Optional[int] = None,
               rois: Optional[Sequence[RotatedRect]] = None) -> List[Detection]:
        """Detections in ``roi`` (default: the whole image, letterboxed), best first.

        With ``rois``, the model runs once per region (e.g. the whole image plus tiles) and the
        candidates of all regions go through one weighted NMS in image pixels."""
        regions = list(rois) if rois is not None else [roi]
        thr = self.spec.min_score if min_score is None else min_score
        all_b, all_s, all_k = [], [], []
        for r in regions:
            b, sc, k = self._candidates(sampler, r, thr)
            if len(sc):
                all_b.append(b), all_s.append(sc), all_k.append(k)
        if not all_s:
            return []
        boxes, scores, kps = weighted_nms(np.concatenate(all_b), np.concatenate(all_s),
                                          np.concatenate(all_k), self.spec.iou_threshold,
                                          max_detections)
        return [Detection(b, float(sc), k) for b, sc, k in zip(boxes, scores, kps)]

    def _candidates(self, sampler: CropSampler, roi: Optional[RotatedRect], thr: float
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decoded detections above ``thr`` in one region, before NMS, in image pixels."""
        if roi is None:
            roi = letterbox_rect(sampler.width, sampler.height)
        else:
            side = max(roi.width, roi.height)
            roi = RotatedRect(roi.cx, roi.cy, side, side, roi.rotation)
        matrix = sampler.crop(roi, self._u8, border="zero")
        to_tensor(self._u8, self._in[0], *self.spec.value_range)
        outs = self.model.run(self._in)
        raw = outs[self.i_box].reshape(len(self.anchors), -1)
        logits = outs[self.i_score].reshape(-1)
        # score > thr  <=>  logit > log(thr / (1 - thr)): decode only those rows
        if thr <= 0.0:
            thr_logit = -math.inf
        elif thr >= 1.0:
            thr_logit = math.inf
        else:
            thr_logit = math.log(thr / (1.0 - thr))
        idx = np.nonzero(logits > thr_logit)[0]
        k = self.spec.num_keypoints
        if idx.size == 0:
            return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                    np.zeros((0, k, 2), np.float32))
        scores = sigmoid_clip(logits[idx])
        boxes, kps = decode(raw[idx], self.anchors[idx], self.size, k)
        corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2) * self.size
        cimg = transform_points(matrix, corners)
        boxes = np.concatenate([cimg.min(axis=1), cimg.max(axis=1)], axis=1)
        return boxes, scores, transform_points(matrix, kps * self.size)


def tile_rects(width: int, height: int, max_tiles: int = 3) -> List[RotatedRect]:
    """Squares along the image's long side, each as wide as the short side (two for 4:3 or 3:2
    images, overlapping evenly; none for square images): a second, closer detector pass for
    people who are small in the letterboxed view of the whole image. At most ``max_tiles``
    (very elongated images get larger squares)."""
    short, long_ = min(width, height), max(width, height)
    side = max(short, long_ / max_tiles)
    if long_ <= side * 1.05:
        return []
    n = min(max_tiles, max(2, int(math.ceil(long_ / side - 1e-9))))
    step = (long_ - side) / (n - 1)
    out = []
    for i in range(n):
        c = side / 2.0 + i * step
        out.append(RotatedRect(c, height / 2.0, side, side, 0.0) if width >= height
                   else RotatedRect(width / 2.0, c, side, side, 0.0))
    return out
