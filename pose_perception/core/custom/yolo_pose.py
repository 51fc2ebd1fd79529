"""One-stage YOLO-pose (Ultralytics YOLOv8/11-pose ONNX export) decoding.

The export's output is ``[1, 4 + 1 + K*D, N]`` (cx, cy, w, h in letterboxed input pixels, person
score, then K keypoints of x, y[, visibility], scores already sigmoid-ed), or its transpose.
An NMS-free end-to-end export (``[1, N, 6 + K*D]``: x1, y1, x2, y2, score, class, keypoints) is
read too.
Input: letterbox to 640 with grey 114 padding, RGB / 255, NCHW.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ._onnx import ModelMetadataError, TensorInfo, fmt_shape
from ..geometry import nms
from .preprocess import InputNormaliser, letterbox
from ..layouts import get_layout
from ..types import Keypoints, Person


def parse_output_format(shape: Sequence[Optional[int]], k: int, kdims: int,
                        model_name: str) -> Tuple[bool, bool]:
    """(transposed, end_to_end) for a ``[1, A, B]`` output; raises on a K / layout mismatch."""
    if len(shape) != 3:
        raise ModelMetadataError(f"{model_name}: YOLO-pose output {fmt_shape(shape)} is not "
                                 "rank 3 ([1, 5 + 3K, N])")
    raw, e2e = 5 + k * kdims, 6 + k * kdims
    a, b = shape[1], shape[2]
    if a == raw:
        return False, False          # [1, C, N]: channels first (the usual export)
    if b == raw:
        return True, False
    if b == e2e:
        return True, True
    if a == e2e:
        return False, True
    raise ModelMetadataError(
        f"{model_name}: YOLO-pose output {fmt_shape(shape)} has no axis of 5 + {k} keypoints x "
        f"{kdims} = {raw} (or {e2e} for an end-to-end export): does the layout's keypoint count "
        f"({k}) match the model?")


def decode_yolo_pose(pred: np.ndarray, k: int, kdims: int, score_threshold: float,
                     iou_threshold: float, max_det: int, end_to_end: bool = False
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (N, C) -> boxes (M, 4) xyxy, scores (M,), keypoints (M, K, 3) in input pixels."""
    if end_to_end:
        boxes, scores, kp = pred[:, :4], pred[:, 4], pred[:, 6:]
    else:
        c = pred[:, :4]
        boxes = np.column_stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2,
                                 c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2])
        scores, kp = pred[:, 4], pred[:, 5:]
    m = scores >= score_threshold
    boxes, scores, kp = boxes[m], scores[m], kp[m].reshape(-1, k, kdims)
    keep = (np.argsort(-scores, kind="stable")[:max_det] if end_to_end
            else nms(boxes, scores, iou_threshold, max_det))
    boxes, scores, kp = boxes[keep], scores[keep], kp[keep]
    if kdims == 2:   # no per-keypoint visibility: use the person score
        kp = np.concatenate([kp, np.repeat(scores[:, None, None], k, axis=1)], axis=2)
    return boxes, scores, kp


class YoloPoseEstimator:
    """Ultralytics YOLO-pose ONNX model -> ``list[Person]`` in the declared layout."""

    def __init__(self, session, model_name: str, input_name: str, output: TensorInfo,
                 layout: str, input_size: Tuple[int, int], normaliser: InputNormaliser,
                 kpt_dims: int = 3, score_threshold: float = 0.25, iou_threshold: float = 0.7,
                 max_det: int = 20):
        self.session, self.input_name, self.layout = session, input_name, layout
        self.k = get_layout(layout).size
        self.kdims = int(kpt_dims)
        self.transposed, self.end_to_end = parse_output_format(output.shape, self.k, self.kdims,
                                                               model_name)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.normaliser = normaliser
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)
        self.max_det = int(max_det)

    def estimate(self, rgb: np.ndarray) -> List[Person]:
        img, lb = letterbox(rgb, self.input_size, centered=True, pad_value=114)
        out = np.asarray(self.session.run(None, {self.input_name: self.normaliser([img])})[0][0],
                         np.float32)
        pred = out if self.transposed else out.T
        boxes, scores, kp = decode_yolo_pose(pred, self.k, self.kdims, self.score_threshold,
                                             self.iou_threshold, self.max_det, self.end_to_end)
        boxes = lb.boxes_to_image(boxes)
        xy = lb.to_image(kp[..., :2])
        h, w = rgb.shape[:2]
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w - 1)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h - 1)
        return [Person(body=Keypoints(self.layout, xy[i], np.clip(kp[i, :, 2], 0, 1)),
                       box=boxes[i].astype(np.float32), score=float(scores[i]),
                       detector_score=float(scores[i]))
                for i in range(len(scores))]
