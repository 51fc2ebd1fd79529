"""Top-down heatmap decoding (HRNet, SimpleBaseline/PoseResNet, Stacked Hourglass, ViTPose,
FastPose): K heatmaps per person crop -> K keypoints in network-input pixels.

Steps: argmax per heatmap, then sub-pixel refinement, either the classic quarter offset towards the
higher neighbour or DARK (Zhang et al., CVPR 2020): Gaussian modulation of the heatmap followed by
a second-order Taylor expansion of its logarithm at the maximum. Heatmap cell ``j`` is input pixel
``j * W_in / W_hm`` (MMPose's standard codec) or ``j * (W_in - 1) / (W_hm - 1)`` with UDP.

The crop / back-projection and the flip test live in :mod:`.topdown`; this module only turns
heatmaps into coordinates and flips heatmaps back.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ._onnx import ModelMetadataError, TensorInfo, describe_outputs, fmt_shape, pick_output

REFINE_MODES = ("dark", "quarter", "none")
ACTIVATIONS = ("none", "sigmoid")


def heatmap_maxima(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Integer (x, y) of the maximum of each (K, H, W) heatmap, and the maximum value."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, h * w)
    idx = np.argmax(flat, axis=1)
    vals = flat[np.arange(k), idx]
    return np.stack([idx % w, idx // w], axis=1).astype(np.float64), vals.astype(np.float32)


def refine_quarter(heatmaps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Move each maximum a quarter cell towards its higher neighbour (SimpleBaseline / HRNet)."""
    k, h, w = heatmaps.shape
    x, y = xy[:, 0].astype(int), xy[:, 1].astype(int)
    kk = np.arange(k)
    okx = (x > 1) & (x < w - 1)
    oky = (y > 1) & (y < h - 1)
    xp, xm = np.clip(x + 1, 0, w - 1), np.clip(x - 1, 0, w - 1)
    yp, ym = np.clip(y + 1, 0, h - 1), np.clip(y - 1, 0, h - 1)
    dx = np.where(okx, heatmaps[kk, y, xp] - heatmaps[kk, y, xm], 0.0)
    dy = np.where(oky, heatmaps[kk, yp, x] - heatmaps[kk, ym, x], 0.0)
    return xy + 0.25 * np.stack([np.sign(dx), np.sign(dy)], axis=1)


def refine_dark(heatmaps: np.ndarray, xy: np.ndarray, blur_kernel: int = 11) -> np.ndarray:
    """DARK sub-pixel refinement around integer maxima ``xy`` (K, 2).

    The heatmap is Gaussian-blurred (kernel ``blur_kernel``, OpenCV's sigma for that size) only in
    a 5x5 window around each maximum, log-transformed, and the maximum moved by ``-H^-1 g``.
    """
    k, h, w = heatmaps.shape
    r = (blur_kernel - 1) // 2
    p = r + 2
    padded = np.pad(heatmaps, ((0, 0), (p, p), (p, p)))
    x, y = xy[:, 0].astype(int), xy[:, 1].astype(int)
    span = np.arange(2 * p + 1)
    patches = padded[np.arange(k)[:, None, None], (y[:, None] + span)[:, :, None],
                     (x[:, None] + span)[:, None, :]]                   # (K, 2p+1, 2p+1)
    g = cv2.getGaussianKernel(blur_kernel, 0).reshape(-1)
    sw = np.lib.stride_tricks.sliding_window_view
    blurred = sw(patches, blur_kernel, axis=2) @ g                      # (K, 2p+1, 5)
    blurred = sw(blurred, blur_kernel, axis=1) @ g                      # (K, 5, 5)
    lg = np.log(np.clip(blurred, 1e-3, 50.0))
    c = 2
    dx = 0.5 * (lg[:, c, c + 1] - lg[:, c, c - 1])
    dy = 0.5 * (lg[:, c + 1, c] - lg[:, c - 1, c])
    dxx = 0.25 * (lg[:, c, c + 2] - 2 * lg[:, c, c] + lg[:, c, c - 2])
    dyy = 0.25 * (lg[:, c + 2, c] - 2 * lg[:, c, c] + lg[:, c - 2, c])
    dxy = 0.25 * (lg[:, c + 1, c + 1] - lg[:, c - 1, c + 1] - lg[:, c + 1, c - 1]
                  + lg[:, c - 1, c - 1])
    det = dxx * dyy - dxy * dxy
    ok = (det > 1e-12) & (dxx < 0) & (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    safe = np.where(ok, det, 1.0)
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + dxx * dy) / safe
    off = np.clip(np.stack([off_x, off_y], axis=1), -1.0, 1.0)
    return xy + np.where(ok[:, None], off, 0.0)


def shift_last_axis(values: np.ndarray, shift: float) -> np.ndarray:
    """``out[..., j] = values[..., j - shift]`` with linear interpolation, edges replicated."""
    if abs(shift) < 1e-9:
        return values
    n = values.shape[-1]
    src = np.clip(np.arange(n) - shift, 0, n - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    f = (src - i0).astype(values.dtype)
    return values[..., i0] * (1 - f) + values[..., i1] * f


def flip_grid_shift(cells: int, input_extent: int, step: float) -> float:
    """Shift (in cells) that realigns a reversed 1-D output grid with the unflipped input.

    A grid of ``cells`` cells where cell ``j`` is input pixel ``j * step``: flipping the input
    (``u -> W_in - 1 - u``) and reversing the grid misplaces content by
    ``cells - 1 - (W_in - 1) / step`` cells; the return value undoes that.
    """
    return -(cells - 1 - (input_extent - 1) / step)


class HeatmapDecoder:
    """Decodes (N, K, H, W) heatmaps; see the module docstring for the conventions."""

    def __init__(self, num_keypoints: int, input_size: Tuple[int, int], refine: str = "dark",
                 blur_kernel: int = 11, udp: bool = False, output_name: Optional[str] = None,
                 output_layout: str = "auto", activation: str = "none"):
        if refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES}, not '{refine}'")
        if blur_kernel < 3 or blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be odd and >= 3, not {blur_kernel}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"heatmap_activation must be one of {ACTIVATIONS}, not '{activation}'")
        if output_layout not in ("auto", "NCHW", "NHWC"):
            raise ValueError(f"output_layout must be auto, NCHW or NHWC, not '{output_layout}'")
        self.k = int(num_keypoints)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.refine, self.blur_kernel, self.udp = refine, int(blur_kernel), bool(udp)
        self.output_name, self.output_layout = output_name, output_layout
        self.sigmoid = activation == "sigmoid"
        self._index = -1

    # -- load-time check -------------------------------------------------------------------
    def check(self, outputs: Sequence[TensorInfo], model_name: str) -> None:
        """Select the heatmap output and verify its shape against the layout and input size."""
        if self.output_name:
            cands = [pick_output(outputs, model_name, self.output_name, "heatmaps")]
        else:
            cands = [o for o in outputs if len(o.shape) == 4]
        if not cands:
            raise ModelMetadataError(f"{model_name}: no rank-4 heatmap output; outputs: "
                                     + describe_outputs(outputs))
        out = cands[-1]      # stacked hourglass / multi-stage exports: the last stage
        if len(out.shape) != 4:
            raise ModelMetadataError(f"{model_name}: heatmap output '{out.name}' is "
                                     f"{fmt_shape(out.shape)}, expected rank 4")
        layout = self.output_layout
        if layout == "auto":
            layout = "NHWC" if out.shape[1] != self.k and out.shape[3] == self.k else "NCHW"
        kdim, hdim, wdim = ((out.shape[1], out.shape[2], out.shape[3]) if layout == "NCHW"
                            else (out.shape[3], out.shape[1], out.shape[2]))
        if kdim is not None and kdim != self.k:
            raise ModelMetadataError(
                f"{model_name}: heatmap output '{out.name}' {fmt_shape(out.shape)} has {kdim} "
                f"heatmaps ({layout}) but the layout has {self.k} keypoints")
        w_in, h_in = self.input_size
        for dim, extent, what in ((wdim, w_in, "width"), (hdim, h_in, "height")):
            if dim is not None and (dim > extent or dim < 2):
                raise ModelMetadataError(
                    f"{model_name}: heatmap {what} {dim} of '{out.name}' {fmt_shape(out.shape)} "
                    f"does not fit input {what} {extent}")
        if wdim and hdim and abs(w_in / wdim - h_in / hdim) > 1e-6 and not self.udp:
            raise ModelMetadataError(
                f"{model_name}: heatmap {wdim}x{hdim} and input {w_in}x{h_in} have different "
                "strides in x and y (wrong input_size order? it is [width, height])")
        self._index = [o.name for o in outputs].index(out.name)
        self.output_layout = layout

    # -- per frame -------------------------------------------------------------------------
    def select(self, raw: List[np.ndarray]) -> List[np.ndarray]:
        hm = np.asarray(raw[self._index], np.float32)
        if self.output_layout == "NHWC":
            hm = hm.transpose(0, 3, 1, 2)
        if self.sigmoid:      # exports that end in logits
            hm = 1.0 / (1.0 + np.exp(-np.clip(hm, -50.0, 50.0)))
        return [np.ascontiguousarray(hm)]

    def _steps(self, hm_w: int, hm_h: int) -> Tuple[float, float]:
        w_in, h_in = self.input_size
        if self.udp:
            return (w_in - 1) / max(hm_w - 1, 1), (h_in - 1) / max(hm_h - 1, 1)
        return w_in / hm_w, h_in / hm_h

    def flip_back(self, arrays: List[np.ndarray], perm: np.ndarray) -> List[np.ndarray]:
        """Heatmaps of horizontally flipped crops -> heatmaps of the unflipped crops."""
        hm = arrays[0][:, perm, :, ::-1]
        step_x, _ = self._steps(hm.shape[3], hm.shape[2])
        return [np.ascontiguousarray(
            shift_last_axis(hm, flip_grid_shift(hm.shape[3], self.input_size[0], step_x)))]

    def decode(self, arrays: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """(N, K, H, W) heatmaps -> keypoints (N, K, 2) in input pixels and scores (N, K)."""
        hms = arrays[0]
        n, _, h, w = hms.shape
        step = np.array(self._steps(w, h))
        uv = np.zeros((n, self.k, 2))
        scores = np.zeros((n, self.k), np.float32)
        for i in range(n):
            xy, vals = heatmap_maxima(hms[i])
            if self.refine == "dark":
                xy = refine_dark(hms[i], xy, self.blur_kernel)
            elif self.refine == "quarter":
                xy = refine_quarter(hms[i], xy)
            uv[i], scores[i] = xy * step, vals
        return uv, scores
