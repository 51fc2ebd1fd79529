"""Image preprocessing for custom models: top-down affine crops, letterbox, input normalisation.

Coordinates are pixel centres (OpenCV convention). The top-down crop follows MMPose: the box is
widened or heightened to the network's aspect ratio, scaled by ``padding`` (1.25), and mapped onto
the input with ``input = (image - centre) * k + c`` where ``k = W / crop_width`` and ``c = W / 2``
(or, with UDP, ``k = (W - 1) / crop_width`` and ``c = (W - 1) / 2``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np


@dataclass(frozen=True)
class CropTransform:
    """Axis-aligned crop of the image mapped onto a network input of ``input_size`` (W, H)."""

    center: Tuple[float, float]     # crop centre, image pixels
    scale: Tuple[float, float]      # crop width, height in image pixels (aspect = input aspect)
    input_size: Tuple[int, int]     # network input width, height
    udp: bool = False               # unbiased data processing (MMPose UDP) convention

    @classmethod
    def from_box(cls, box_xyxy: Sequence[float], input_size: Tuple[int, int],
                 padding: float = 1.25, udp: bool = False) -> "CropTransform":
        """The crop for a detection box: same centre, aspect fixed to the input's, times padding."""
        x0, y0, x1, y1 = (float(v) for v in box_xyxy[:4])
        w_in, h_in = input_size
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        aspect = w_in / h_in
        if w > aspect * h:
            h = w / aspect
        else:
            w = h * aspect
        return cls(((x0 + x1) * 0.5, (y0 + y1) * 0.5), (w * padding, h * padding),
                   (int(w_in), int(h_in)), udp)

    def _k_c(self) -> Tuple[np.ndarray, np.ndarray]:
        size = np.asarray(self.input_size, np.float64)
        if self.udp:
            return (size - 1.0) / np.asarray(self.scale), (size - 1.0) * 0.5
        return size / np.asarray(self.scale), size * 0.5

    def matrix(self) -> np.ndarray:
        """2x3 affine image -> input (for ``cv2.warpAffine``)."""
        k, c = self._k_c()
        cx, cy = self.center
        return np.array([[k[0], 0.0, c[0] - k[0] * cx], [0.0, k[1], c[1] - k[1] * cy]])

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Input-pixel coordinates (..., 2) back to image pixels."""
        k, c = self._k_c()
        return (np.asarray(uv, np.float64) - c) / k + self.center

    def warp(self, image: np.ndarray, border_value: float = 0.0) -> np.ndarray:
        return cv2.warpAffine(image, self.matrix(), tuple(self.input_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(border_value,) * 3)


@dataclass(frozen=True)
class Letterbox:
    """Resize keeping aspect ratio and pad; ``image = (input - pad) / ratio`` (Ultralytics)."""

    ratio: float
    pad: Tuple[float, float]    # left, top in input pixels

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        return (np.asarray(uv, np.float64) - self.pad) / self.ratio

    def boxes_to_image(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, np.float64).copy()
        b[..., [0, 2]] = (b[..., [0, 2]] - self.pad[0]) / self.ratio
        b[..., [1, 3]] = (b[..., [1, 3]] - self.pad[1]) / self.ratio
        return b


def letterbox(image: np.ndarray, size: Tuple[int, int], centered: bool = True,
              pad_value: int = 114) -> Tuple[np.ndarray, Letterbox]:
    """Fit ``image`` into ``size`` (W, H) keeping its aspect ratio.

    ``centered`` pads both sides like Ultralytics; otherwise pads right/bottom like MMDetection.
    """
    h, w = image.shape[:2]
    out_w, out_h = size
    r = min(out_w / w, out_h / h)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    if centered:
        dw, dh = (out_w - new_w) / 2.0, (out_h - new_h) / 2.0
        left, top = int(round(dw - 0.1)), int(round(dh - 0.1))
    else:
        left = top = 0
    resized = image if (new_w, new_h) == (w, h) else cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((out_h, out_w) + image.shape[2:], pad_value, dtype=image.dtype)
    out[top:top + new_h, left:left + new_w] = resized
    return out, Letterbox(r, (float(left), float(top)))


class InputNormaliser:
    """RGB uint8 images -> the float32 tensor the model wants.

    ``mean``/``std`` are in pixel units (0-255) and in the model's channel order.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, channel_order: str = "rgb",
                 input_layout: str = "NCHW"):
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', not '{channel_order}'")
        if input_layout not in ("NCHW", "NHWC"):
            raise ValueError(f"input_layout must be 'NCHW' or 'NHWC', not '{input_layout}'")
        self.mean = np.asarray(mean, np.float32).reshape(3)
        self.inv_std = (1.0 / np.asarray(std, np.float32)).reshape(3)
        self.bgr = channel_order == "bgr"
        self.nchw = input_layout == "NCHW"

    def __call__(self, images: List[np.ndarray]) -> np.ndarray:
        batch = np.stack(images).astype(np.float32)          # (N, H, W, 3) RGB
        if self.bgr:
            batch = batch[..., ::-1]
        batch = (batch - self.mean) * self.inv_std
        if self.nchw:
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch)
