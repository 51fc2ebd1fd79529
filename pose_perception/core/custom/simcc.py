"""SimCC decoding (RTMPose, SimCC-ResNet): per-keypoint x and y classification vectors.

``simcc_x`` is (N, K, W_in * split_ratio) and ``simcc_y`` (N, K, H_in * split_ratio); bin ``b`` is
input pixel ``b / split_ratio``. A keypoint's score is the minimum of the two vector maxima
(MMPose's ``get_simcc_maximum``) or their mean (``rtmlib``); it is clipped to [0, 1] later.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ._onnx import ModelMetadataError, TensorInfo, describe_outputs, fmt_shape, pick_output
from .heatmap import flip_grid_shift, shift_last_axis

SCORE_MODES = ("min", "mean")


class SimccDecoder:
    """Decodes SimCC outputs; ``check`` picks ``simcc_x``/``simcc_y`` by name, else by length."""

    def __init__(self, num_keypoints: int, input_size: Tuple[int, int], split_ratio: float = 2.0,
                 score_mode: str = "min", output_names: Optional[Sequence[str]] = None):
        if score_mode not in SCORE_MODES:
            raise ValueError(f"simcc_score must be one of {SCORE_MODES}, not '{score_mode}'")
        if split_ratio <= 0:
            raise ValueError(f"split_ratio must be > 0, not {split_ratio}")
        self.k = int(num_keypoints)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.ratio, self.score_mode = float(split_ratio), score_mode
        self.output_names = tuple(output_names) if output_names else None
        self._ix, self._iy = 0, 1

    def _expected(self) -> Tuple[int, int]:
        w, h = self.input_size
        return int(round(w * self.ratio)), int(round(h * self.ratio))

    def check(self, outputs: Sequence[TensorInfo], model_name: str) -> None:
        names = [o.name for o in outputs]
        nx, ny = self._expected()
        if self.output_names:
            if len(self.output_names) != 2:
                raise ValueError("output_names for simcc must be [simcc_x, simcc_y]")
            ox = pick_output(outputs, model_name, self.output_names[0], "simcc_x")
            oy = pick_output(outputs, model_name, self.output_names[1], "simcc_y")
        elif "simcc_x" in names and "simcc_y" in names:
            ox, oy = outputs[names.index("simcc_x")], outputs[names.index("simcc_y")]
        else:
            rank3 = [o for o in outputs if len(o.shape) == 3]
            if len(rank3) < 2:
                raise ModelMetadataError(
                    f"{model_name}: a SimCC model has two rank-3 outputs (simcc_x [1, K, "
                    f"{nx}], simcc_y [1, K, {ny}]); outputs: {describe_outputs(outputs)}")
            xs = [o for o in rank3 if o.shape[2] == nx]
            ys = [o for o in rank3 if o.shape[2] == ny and o is not (xs[0] if xs else None)]
            ox, oy = (xs[0], ys[0]) if xs and ys else (rank3[0], rank3[1])
        for o, n, axis in ((ox, nx, "x"), (oy, ny, "y")):
            if len(o.shape) != 3:
                raise ModelMetadataError(f"{model_name}: simcc_{axis} output '{o.name}' is "
                                         f"{fmt_shape(o.shape)}, expected [N, K, bins]")
            if o.shape[1] is not None and o.shape[1] != self.k:
                raise ModelMetadataError(
                    f"{model_name}: simcc_{axis} output '{o.name}' {fmt_shape(o.shape)} has "
                    f"{o.shape[1]} keypoints but the layout has {self.k}")
            if o.shape[2] is not None and o.shape[2] != n:
                raise ModelMetadataError(
                    f"{model_name}: simcc_{axis} output '{o.name}' {fmt_shape(o.shape)} has "
                    f"{o.shape[2]} bins; input_size {list(self.input_size)} x split_ratio "
                    f"{self.ratio} gives {n} (wrong split_ratio or input_size?)")
        self._ix, self._iy = names.index(ox.name), names.index(oy.name)

    def select(self, raw: List[np.ndarray]) -> List[np.ndarray]:
        return [np.asarray(raw[self._ix], np.float32), np.asarray(raw[self._iy], np.float32)]

    def flip_back(self, arrays: List[np.ndarray], perm: np.ndarray) -> List[np.ndarray]:
        """Vectors of horizontally flipped crops -> vectors of the unflipped crops."""
        sx, sy = arrays[0][:, perm, ::-1], arrays[1][:, perm]
        shift = flip_grid_shift(sx.shape[2], self.input_size[0], 1.0 / self.ratio)
        return [np.ascontiguousarray(shift_last_axis(sx, shift)), np.ascontiguousarray(sy)]

    def decode(self, arrays: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """-> keypoints (N, K, 2) in input pixels and scores (N, K)."""
        sx, sy = arrays
        bx, by = np.argmax(sx, axis=2), np.argmax(sy, axis=2)
        vx, vy = np.max(sx, axis=2), np.max(sy, axis=2)
        uv = np.stack([bx, by], axis=2).astype(np.float64) / self.ratio
        scores = np.minimum(vx, vy) if self.score_mode == "min" else 0.5 * (vx + vy)
        return uv, scores.astype(np.float32)
