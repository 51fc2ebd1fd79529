"""Rotated square crops for landmark models, as MediaPipe makes them, in image pixels.

A crop is a ``RotatedRect`` (centre, size, rotation in radians). The crop's pixel ``(x, y)`` of an
``S x S`` model input maps to the image point

    P = C + R(rotation) @ ((x / S - 0.5) * width, (y / S - 0.5) * height)

with ``R(a) = [[cos a, -sin a], [sin a, cos a]]`` in image coordinates (y down). The same affine
warps the image into the model input and brings the model's landmarks back to the image.
MediaPipe's rules for building rects (alignment points, bounding boxes, scale/shift/square) are
reproduced here in pixels. ROS-free.
"""
from __future__ import annotations

import math
import threading
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .types import RotatedRect

TWO_PI = 2.0 * math.pi


def normalize_radians(angle: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return angle - TWO_PI * math.floor((angle + math.pi) / TWO_PI)


def rotation_from_points(p0: Sequence[float], p1: Sequence[float], target_angle: float) -> float:
    """MediaPipe's crop rotation: ``target - atan2(-(y1 - y0), x1 - x0)`` (pixels, y down), so
    that the vector p0 -> p1 points at ``target_angle`` (counter-clockwise from +x) in the crop."""
    return normalize_radians(target_angle - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0]))


def rect_from_alignment(p0: Sequence[float], p1: Sequence[float],
                        target_angle: float) -> RotatedRect:
    """MediaPipe's AlignmentPointsRects: centre p0, side 2*|p1 - p0|, rotated to the target."""
    size = 2.0 * math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    return RotatedRect(float(p0[0]), float(p0[1]), size, size,
                       rotation_from_points(p0, p1, target_angle))


def rect_from_box(box: Sequence[float], rotation: float = 0.0) -> RotatedRect:
    """An axis-aligned ``x0, y0, x1, y1`` box as a rect with the given rotation (MediaPipe's
    DetectionsToRects keeps the box's centre and size and only sets the rotation)."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return RotatedRect((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rotation)


def points_box(points: np.ndarray) -> np.ndarray:
    """Axis-aligned bounds (4,) ``x0, y0, x1, y1`` of (N, 2) points, ignoring NaN rows."""
    p = np.asarray(points, np.float32).reshape(-1, 2)
    return np.array([np.nanmin(p[:, 0]), np.nanmin(p[:, 1]),
                     np.nanmax(p[:, 0]), np.nanmax(p[:, 1])], np.float32)


def rotated_bounds_rect(points: np.ndarray, rotation: float) -> RotatedRect:
    """The tightest rect with this rotation around the points (MediaPipe's HandLandmarksToRect):
    bounds measured in the rotated frame, centre rotated back."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    centre = (p.min(0) + p.max(0)) / 2
    c, s = math.cos(rotation), math.sin(rotation)
    d = p - centre
    # coordinates in the rect's frame: R(-rotation) @ d
    u = d[:, 0] * c + d[:, 1] * s
    v = -d[:, 0] * s + d[:, 1] * c
    pu, pv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    cx = centre[0] + pu * c - pv * s
    cy = centre[1] + pu * s + pv * c
    return RotatedRect(float(cx), float(cy), float(u.max() - u.min()), float(v.max() - v.min()),
                       rotation)


def transform_rect(rect: RotatedRect, scale_x: float = 1.0, scale_y: float = 1.0,
                   shift_x: float = 0.0, shift_y: float = 0.0,
                   square_long: bool = False) -> RotatedRect:
    """MediaPipe's RectTransformation in pixels: shift (a fraction of the size, along the rect's
    own axes), make square (long side), then scale."""
    w, h, r = rect.width, rect.height, rect.rotation
    dx, dy = w * shift_x, h * shift_y
    c, s = math.cos(r), math.sin(r)
    cx, cy = rect.cx + dx * c - dy * s, rect.cy + dx * s + dy * c
    if square_long:
        w = h = max(w, h)
    return RotatedRect(cx, cy, w * scale_x, h * scale_y, r)


def crop_to_image_matrix(rect: RotatedRect, out_w: int, out_h: int) -> np.ndarray:
    """2x3 affine: crop pixel (x, y) of an ``out_w x out_h`` crop -> image pixel."""
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    sx, sy = rect.width / out_w, rect.height / out_h
    a = np.array([[c * sx, -s * sy], [s * sx, c * sy]], np.float64)
    t = np.array([rect.cx, rect.cy]) - a @ np.array([out_w / 2.0, out_h / 2.0])
    return np.hstack([a, t[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points; returns float32 of the same shape."""
    p = np.asarray(points, np.float64)
    out = p @ matrix[:, :2].T + matrix[:, 2]
    return out.astype(np.float32)


def rect_corners(rect: RotatedRect) -> np.ndarray:
    """(4, 2) corners in image pixels: top-left, top-right, bottom-right, bottom-left of the
    crop."""
    m = crop_to_image_matrix(rect, 1, 1)
    return transform_points(m, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64))


def rect_bounds(r: RotatedRect) -> np.ndarray:
    """(4,) ``x0, y0, x1, y1``: the axis-aligned bounds of a rotated rect."""
    c = rect_corners(r)
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], np.float32)


def scaled_rect(r: RotatedRect, scale: float) -> RotatedRect:
    """The rect ``scale`` times larger about its centre."""
    return RotatedRect(r.cx, r.cy, r.width * scale, r.height * scale, r.rotation)


def size_ratio(a: RotatedRect, b: RotatedRect) -> float:
    """How many times larger the larger of two crops is (inf for an empty one)."""
    small, large = sorted((abs(a.width), abs(b.width)))
    return large / small if small > 0 else math.inf


def rect_contains(rect: RotatedRect, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(N,) bool: points inside the rect grown by ``margin`` (a fraction of its size; negative
    shrinks it)."""
    p = np.asarray(points, np.float64).reshape(-1, 2) - (rect.cx, rect.cy)
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    u = p[:, 0] * c + p[:, 1] * s
    v = -p[:, 0] * s + p[:, 1] * c
    hw = rect.width * (1 + margin) / 2
    hh = rect.height * (1 + margin) / 2
    return (np.abs(u) < hw) & (np.abs(v) < hh)


def letterbox_rect(width: int, height: int) -> RotatedRect:
    """The square rect around a whole ``width x height`` image (the letterbox: cropping it with a
    zero border pads the short side symmetrically), centred as MediaPipe does."""
    side = float(max(width, height))
    return RotatedRect(width / 2.0, height / 2.0, side, side, 0.0)


class CropSampler:
    """Warps rotated crops out of one image into preallocated buffers.

    Sampling is bilinear, as MediaPipe's (the models' outputs then match MediaPipe's own to a
    fraction of a pixel). Only where a crop shrinks the image by ``max_shrink`` or more (huge
    images), bilinear sampling would skip most pixels and alias badly: such crops read a level of
    a lazily built Gaussian pyramid instead. ``max_shrink=None`` never does. Several threads may
    crop from one sampler at once (each into its own ``out``)."""

    def __init__(self, image: np.ndarray, max_shrink: Optional[float] = 8.0) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
        self.levels: List[np.ndarray] = [np.ascontiguousarray(image)]
        self.height, self.width = image.shape[:2]
        self.max_shrink = max_shrink
        self._lock = threading.Lock()

    def level(self, k: int) -> np.ndarray:
        """Pyramid level ``k`` (0: the image; each level half the size of the one before)."""
        if k < len(self.levels):
            return self.levels[k]
        with self._lock:
            while len(self.levels) <= k:
                self.levels.append(cv2.pyrDown(self.levels[-1]))
            return self.levels[k]

    def crop(self, rect: RotatedRect, out: np.ndarray, border: str = "replicate") -> np.ndarray:
        """Write the crop ``rect`` into ``out`` (HxWx3, the image's dtype) and return the 2x3
        crop -> image matrix (full-resolution pixels). ``border``: 'replicate' (landmark models)
        or 'zero' (detectors' letterbox)."""
        oh, ow = out.shape[:2]
        matrix = crop_to_image_matrix(rect, ow, oh)
        shrink = max(abs(rect.width) / ow, abs(rect.height) / oh)
        k = 0
        while (self.max_shrink is not None and shrink >= self.max_shrink
               and min(self.level(k).shape[:2]) >= 4):
            shrink /= 2.0
            k += 1
        src = self.level(k)
        m = matrix / (2 ** k) if k else matrix   # pyrDown: level-k pixel = full pixel / 2^k
        mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
        cv2.warpAffine(src, m, (ow, oh), dst=out, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=mode, borderValue=0)
        return matrix


def to_tensor(u8: np.ndarray, out: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """uint8 pixels -> float32 in [lo, hi], written into ``out`` (no allocation). The scale is
    a float32 scalar so that numpy multiplies in float32 (a Python float would make it compute
    in float64 and cast: 3-4x slower)."""
    np.multiply(u8, np.float32((hi - lo) / 255.0), out=out, casting="unsafe")
    if lo:
        out += np.float32(lo)
    return out


class CropBatcher:
    """Runs a landmark model on rotated square crops (replicate border, [0, 1] input), in
    batches of up to ``max_batch`` when the model's batch dimension is dynamic, reusing its input
    buffers. Shared by the body, face and hand landmark models."""

    def __init__(self, model, size: int, max_batch: int = 4) -> None:
        model.check_input_shape((None, size, size, 3))
        self.model = model
        self.size = size
        self.batch = max(1, max_batch) if model.dynamic_batch else 1
        self._u8 = np.empty((size, size, 3), np.uint8)
        self._in = np.empty((self.batch, size, size, 3), np.float32)

    def run(self, sampler: CropSampler, rois: Sequence[RotatedRect]):
        """Yields ``(slice of rois, crop->image matrices, model outputs)`` per model call."""
        for start in range(0, len(rois), self.batch):
            chunk = rois[start:start + self.batch]
            mats = []
            for j, roi in enumerate(chunk):
                mats.append(sampler.crop(roi, self._u8, border="replicate"))
                to_tensor(self._u8, self._in[j])
            yield slice(start, start + len(chunk)), mats, self.model.run(self._in[:len(chunk)])

    def to_image(self, matrix: np.ndarray, roi: RotatedRect, points: np.ndarray,
                 out: np.ndarray) -> None:
        """Crop-pixel landmarks (x, y, z) -> image pixels in ``out``; z scaled like x."""
        out[:, :2] = transform_points(matrix, points[:, :2])
        out[:, 2] = points[:, 2] / self.size * roi.width
