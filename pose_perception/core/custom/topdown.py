"""Generic top-down estimator: person (or face) boxes -> affine crops -> ONNX model -> decoder ->
keypoints in image pixels.

The decoder (heatmap, SimCC or regression) supplies four methods: ``check(outputs, name)`` at load,
``select(raw_outputs)`` (its tensors in a canonical layout, batch first), ``flip_back(arrays,
perm)`` (outputs of horizontally flipped crops mapped to the unflipped crops) and
``decode(arrays) -> (uv (N, K, 2) input pixels, scores (N, K))``. The flip test averages the
model's outputs for the crop and its mirror image (MMPose's ``flip_test``).
"""
from __future__ import annotations

from typing import List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from ._onnx import TensorInfo
from .detector import PersonDetector
from .face_landmarks import FaceLandmarks
from .preprocess import CropTransform, InputNormaliser
from ..layouts import get_layout
from ..types import Keypoints, Person


class TopDownDecoder(Protocol):
    def check(self, outputs: Sequence[TensorInfo], model_name: str) -> None: ...
    def select(self, raw: List[np.ndarray]) -> List[np.ndarray]: ...
    def flip_back(self, arrays: List[np.ndarray], perm: np.ndarray) -> List[np.ndarray]: ...
    def decode(self, arrays: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]: ...


class TopDownEstimator:
    """Runs a top-down keypoint model on boxes from ``detector`` (or boxes given per call)."""

    def __init__(self, session, input_name: str, batch_dynamic: bool, decoder: TopDownDecoder,
                 layout: str, input_size: Tuple[int, int], normaliser: InputNormaliser,
                 detector: Optional[PersonDetector], padding: float = 1.25, udp: bool = False,
                 flip_perm: Optional[np.ndarray] = None, kind: str = "body",
                 min_person_score: float = 0.0):
        if kind not in ("body", "face"):
            raise ValueError(f"kind must be 'body' or 'face', not '{kind}'")
        self.session, self.input_name, self.batch_dynamic = session, input_name, batch_dynamic
        self.decoder, self.layout = decoder, layout
        self.k = get_layout(layout).size
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.normaliser, self.detector = normaliser, detector
        self.padding, self.udp, self.flip_perm = float(padding), bool(udp), flip_perm
        self.kind, self.min_person_score = kind, float(min_person_score)

    # ------------------------------------------------------------------------------------
    def _run(self, tensor: np.ndarray) -> List[np.ndarray]:
        if self.batch_dynamic or len(tensor) == 1:
            return self.session.run(None, {self.input_name: tensor})
        per = [self.session.run(None, {self.input_name: tensor[i:i + 1]})
               for i in range(len(tensor))]
        return [np.concatenate([p[j] for p in per], axis=0) for j in range(len(per[0]))]

    def keypoints_for_boxes(self, rgb: np.ndarray, boxes: np.ndarray
                            ) -> Tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in image pixels and raw scores (N, K) for xyxy ``boxes``."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        n = len(boxes)
        if n == 0:
            return np.zeros((0, self.k, 2)), np.zeros((0, self.k), np.float32)
        crops_t = [CropTransform.from_box(b, self.input_size, self.padding, self.udp)
                   for b in boxes]
        crops = [t.warp(rgb) for t in crops_t]
        if self.flip_perm is not None:
            crops += [np.ascontiguousarray(c[:, ::-1]) for c in crops]
        arrays = self.decoder.select(self._run(self.normaliser(crops)))
        if self.flip_perm is not None:
            back = self.decoder.flip_back([a[n:] for a in arrays], self.flip_perm)
            arrays = [(a[:n] + b) * 0.5 for a, b in zip(arrays, back)]
        uv, scores = self.decoder.decode(arrays)
        xy = np.stack([t.to_image(uv[i]) for i, t in enumerate(crops_t)])
        return xy, scores

    def estimate(self, rgb: np.ndarray, boxes: Optional[np.ndarray] = None,
                 box_scores: Optional[np.ndarray] = None
                 ) -> Union[List[Person], List[FaceLandmarks]]:
        """People (``kind='body'``) or faces (``kind='face'``) in an RGB uint8 image.

        ``boxes`` (N, 4) xyxy pixels replace the detector for this call.
        """
        if boxes is None:
            if self.detector is None:
                raise ValueError("no boxes given and no detector configured")
            boxes, box_scores = self.detector.detect(rgb)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if box_scores is None:
            box_scores = np.ones(len(boxes), np.float32)
        xy, raw = self.keypoints_for_boxes(rgb, boxes)
        scores = np.clip(raw, 0.0, 1.0)
        out = []
        for i in range(len(boxes)):
            kp = Keypoints(self.layout, xy[i], scores[i])
            if self.kind == "face":
                out.append(FaceLandmarks(kp, boxes[i].copy(), float(box_scores[i])))
                continue
            score = float(scores[i].mean())
            if score < self.min_person_score:
                continue
            out.append(Person(body=kp, box=boxes[i].copy(), score=score,
                              detector_score=float(box_scores[i])))
        return out
