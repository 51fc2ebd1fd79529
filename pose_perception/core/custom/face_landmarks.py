"""Facial-landmark models (68 / 98 points) run on a face box.

Two decoders: heatmaps (HRNetV2-W18 on 300W / WFLW / COCO-WholeBody-Face, via
:class:`.heatmap.HeatmapDecoder`) and direct regression (PFLD-style models whose output is the K
points' coordinates in the crop, normalised to [0, 1] or in input pixels).
The crop, flip test and back-projection are the shared top-down ones (:mod:`.topdown`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ._onnx import ModelMetadataError, TensorInfo, describe_outputs, pick_output
from .layouts import to_ibug68
from ..types import Keypoints

UNITS = ("normalized", "pixels")


@dataclass
class FaceLandmarks:
    """One face from a custom landmark model (the counterpart of ``types.Face`` for layouts other
    than the 468-point mesh)."""

    keypoints: Keypoints                 # the declared layout (ibug68, wflw98, ...)
    box: np.ndarray                      # (4,) x_min, y_min, x_max, y_max pixels (the input box)
    score: float                         # the box's score (1.0 for given boxes)
    track_id: int = 0

    def ibug68(self) -> Keypoints:
        return to_ibug68(self.keypoints)


def _per_sample(o: TensorInfo) -> Optional[int]:
    dims = o.shape[1:]
    if any(d is None for d in dims):
        return None
    return int(np.prod(dims)) if dims else 1


class RegressionDecoder:
    """Direct coordinate regression: one output of K x 2 (or K x 3, z ignored) values per crop."""

    def __init__(self, num_keypoints: int, input_size: Tuple[int, int],
                 units: str = "normalized", output_name: Optional[str] = None,
                 score_output: Optional[str] = None):
        if units not in UNITS:
            raise ValueError(f"regression_units must be one of {UNITS}, not '{units}'")
        self.k = int(num_keypoints)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.units, self.output_name, self.score_output = units, output_name, score_output
        self._i, self._is, self._dims = 0, -1, 2

    def check(self, outputs: Sequence[TensorInfo], model_name: str) -> None:
        names = [o.name for o in outputs]
        if self.output_name:
            out = pick_output(outputs, model_name, self.output_name, "landmarks")
            n = _per_sample(out)
            if n is not None and n not in (2 * self.k, 3 * self.k):
                raise ModelMetadataError(
                    f"{model_name}: landmark output '{out.name}' holds {n} values per face; "
                    f"the layout's {self.k} points need {2 * self.k} (x, y) or {3 * self.k}")
        else:
            fits = [o for o in outputs if _per_sample(o) in (2 * self.k, 3 * self.k)]
            if not fits:
                raise ModelMetadataError(
                    f"{model_name}: no output holds {2 * self.k} (x, y) or {3 * self.k} values "
                    f"per face for the layout's {self.k} points; outputs: "
                    + describe_outputs(outputs))
            out = fits[0]
        n = _per_sample(out)
        self._dims = 3 if n == 3 * self.k else 2
        self._i = names.index(out.name)
        if self.score_output:
            so = pick_output(outputs, model_name, self.score_output, "landmark scores")
            if _per_sample(so) not in (None, 1, self.k):
                raise ModelMetadataError(f"{model_name}: score output '{so.name}' must hold 1 or "
                                         f"{self.k} values per face")
            self._is = names.index(so.name)

    def select(self, raw: List[np.ndarray]) -> List[np.ndarray]:
        out = np.asarray(raw[self._i], np.float64)
        pts = out.reshape(out.shape[0], self.k, -1)[..., :2]
        if self.units == "normalized":
            pts = pts * np.asarray(self.input_size, np.float64)
        n = out.shape[0]
        if self._is >= 0:
            s = np.asarray(raw[self._is], np.float32).reshape(n, -1)
            scores = np.broadcast_to(s, (n, self.k)) if s.shape[1] == 1 else s
        else:
            scores = np.ones((n, self.k), np.float32)
        return [pts, np.asarray(scores, np.float32)]

    def flip_back(self, arrays: List[np.ndarray], perm: np.ndarray) -> List[np.ndarray]:
        pts, scores = arrays
        pts = pts[:, perm].copy()
        pts[..., 0] = self.input_size[0] - 1.0 - pts[..., 0]
        return [pts, scores[:, perm]]

    def decode(self, arrays: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        return arrays[0], arrays[1]
