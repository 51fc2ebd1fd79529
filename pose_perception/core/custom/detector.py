"""Person detectors for top-down custom models.

``PersonDetector`` is the protocol (``detect(rgb) -> (boxes (N, 4) xyxy pixels, scores (N,))``).
Implementations: an ONNX YOLOv8-style detector (``[1, 4 + nc, N]`` or transposed), an ONNX
RTMDet-style export from MMDeploy (``dets [1, N, 5]`` + ``labels [1, N]``), the built-in BlazePose
detector (adapter, imported lazily), and the whole image as one box.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from ._onnx import (ModelMetadataError, check_image_input, check_normalisation, create_session,
                    describe_outputs, fmt_shape, metadata_of, outputs_of, parse_meta_value,
                    resolve_model_path)
from ..geometry import nms
from .preprocess import InputNormaliser, letterbox

DETECTOR_TYPES = ("yolo", "rtmdet", "blazepose", "full_image")


@runtime_checkable
class PersonDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) float32 x_min, y_min, x_max, y_max in image pixels; scores (N,)."""
        ...


@dataclass
class DetectorConfig:
    """Which detector feeds a top-down model (the ``detector:`` block of a custom-model YAML)."""

    type: str = "full_image"
    path: Optional[str] = None
    input_size: Tuple[int, int] = (640, 640)        # width, height
    score_threshold: float = 0.3
    iou_threshold: float = 0.45
    classes: Tuple[int, ...] = (0,)                 # class ids kept (COCO person = 0)
    num_classes: Optional[int] = None               # YOLO: nc when it cannot be inferred
    max_detections: int = 20
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    channel_order: Optional[str] = None
    input_layout: str = "NCHW"
    options: Dict[str, Any] = field(default_factory=dict)   # blazepose: min_score, aspect

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "DetectorConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown detector config keys {unknown}; known: {sorted(known)}")
        if "input_size" in d:
            d["input_size"] = _size(d["input_size"], "detector.input_size")
        if "classes" in d:
            d["classes"] = tuple(int(c) for c in np.atleast_1d(d["classes"]))
        cfg = cls(**d)
        bad = sorted(set(cfg.options) - {"min_score", "max_detections", "aspect"})
        if bad:
            raise ValueError(f"unknown detector.options {bad}; known (blazepose): "
                             "min_score, max_detections, aspect")
        if cfg.type not in DETECTOR_TYPES:
            raise ValueError(f"detector.type must be one of {DETECTOR_TYPES}, not '{cfg.type}'")
        if cfg.type in ("yolo", "rtmdet") and not cfg.path:
            raise ValueError(f"detector.type '{cfg.type}' needs detector.path (an ONNX file)")
        return cfg


def _size(v, what: str) -> Tuple[int, int]:
    if isinstance(v, dict):
        v = (v["width"], v["height"])
    v = list(np.atleast_1d(v))
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or min(int(x) for x in v) <= 0:
        raise ValueError(f"{what} must be [width, height] (or one number), got {v}")
    return int(v[0]), int(v[1])


class FullImageDetector:
    """The whole image as one person box (for single-person, pre-cropped input)."""

    def detect(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        return np.array([[0, 0, w - 1, h - 1]], np.float32), np.ones(1, np.float32)


def _clip_boxes(boxes: np.ndarray, shape) -> np.ndarray:
    h, w = shape[:2]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w - 1)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h - 1)
    return b


class _OnnxDetectorBase:
    def __init__(self, cfg: DetectorConfig, default_mean, default_std, default_order: str,
                 providers=None, threads=None, base_dir: Optional[Path] = None):
        self.cfg = cfg
        self.path = resolve_model_path(cfg.path, base_dir)
        self.name = self.path.name
        self.session = create_session(self.path, providers, threads)
        self.input, _ = check_image_input(self.session, self.name, cfg.input_size,
                                          cfg.input_layout)
        mean, std = check_normalisation(self.name, cfg.mean if cfg.mean is not None
                                        else default_mean,
                                        cfg.std if cfg.std is not None else default_std)
        self.norm = InputNormaliser(mean, std, cfg.channel_order or default_order,
                                    cfg.input_layout)
        self.outputs = outputs_of(self.session)


class YoloDetector(_OnnxDetectorBase):
    """Ultralytics YOLOv8/11 detection export: ``[1, 4 + nc, N]`` (cx, cy, w, h in letterboxed
    input pixels, then class scores), or the transpose; letterbox 114, RGB / 255."""

    def __init__(self, cfg: DetectorConfig, providers=None, threads=None,
                 base_dir: Optional[Path] = None):
        super().__init__(cfg, (0.0,), (255.0,), "rgb", providers, threads, base_dir)
        if len(self.outputs) < 1 or len(self.outputs[0].shape) != 3:
            raise ModelMetadataError(f"{self.name}: a YOLO detector has one [1, 4 + nc, N] "
                                     f"output; outputs: {describe_outputs(self.outputs)}")
        nc = cfg.num_classes
        names = parse_meta_value(metadata_of(self.session).get("names", ""))
        if nc is None and isinstance(names, dict):
            nc = len(names)
        self.num_classes = nc
        shape = self.outputs[0].shape
        if nc is not None and 4 + nc not in shape[1:]:
            raise ModelMetadataError(f"{self.name}: output {fmt_shape(shape)} has no axis of "
                                     f"4 + {nc} classes = {4 + nc}")
        if max(cfg.classes, default=-1) >= (nc or 1 << 30):
            raise ModelMetadataError(f"{self.name}: class ids {list(cfg.classes)} beyond the "
                                     f"model's {nc} classes")

    def _channels_last(self, out: np.ndarray) -> np.ndarray:
        a, b = out.shape
        if self.num_classes is not None:
            c = 4 + self.num_classes
            return out.T if a == c and b != c else out
        return out.T if a < b else out          # N anchors >> 4 + nc

    def detect(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        img, lb = letterbox(rgb, self.cfg.input_size, centered=True, pad_value=114)
        out = self.session.run(None, {self.input.name: self.norm([img])})[0][0]
        pred = self._channels_last(np.asarray(out, np.float32))
        cls_scores = pred[:, 4:]
        cls = np.argmax(cls_scores, axis=1)
        score = cls_scores[np.arange(len(pred)), cls]
        m = (score >= self.cfg.score_threshold) & np.isin(cls, self.cfg.classes)
        if not np.any(m):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        cxcywh, score = pred[m, :4], score[m]
        boxes = np.column_stack([cxcywh[:, 0] - cxcywh[:, 2] / 2, cxcywh[:, 1] - cxcywh[:, 3] / 2,
                                 cxcywh[:, 0] + cxcywh[:, 2] / 2, cxcywh[:, 1] + cxcywh[:, 3] / 2])
        keep = nms(boxes, score, self.cfg.iou_threshold, self.cfg.max_detections)
        return _clip_boxes(lb.boxes_to_image(boxes[keep]), rgb.shape), score[keep].astype(
            np.float32)


class RtmdetDetector(_OnnxDetectorBase):
    """MMDeploy end-to-end detection export (RTMDet, YOLOX, ...): ``dets [1, N, 5]``
    (x1, y1, x2, y2, score in input pixels, already NMS-ed) and ``labels [1, N]``. Resize keeping
    the aspect ratio, pad right/bottom with 114; MMDetection's BGR mean/std by default."""

    def __init__(self, cfg: DetectorConfig, providers=None, threads=None,
                 base_dir: Optional[Path] = None):
        super().__init__(cfg, (103.53, 116.28, 123.675), (57.375, 57.12, 58.395), "bgr",
                         providers, threads, base_dir)
        dets = [i for i, o in enumerate(self.outputs) if len(o.shape) == 3 and o.shape[2] == 5]
        labels = [i for i, o in enumerate(self.outputs) if len(o.shape) == 2]
        if not dets or not labels:
            raise ModelMetadataError(f"{self.name}: an RTMDet-style export has outputs dets "
                                     f"[1, N, 5] and labels [1, N]; outputs: "
                                     f"{describe_outputs(self.outputs)}")
        self._dets, self._labels = dets[0], labels[0]

    def detect(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        img, lb = letterbox(rgb, self.cfg.input_size, centered=False, pad_value=114)
        outs = self.session.run(None, {self.input.name: self.norm([img])})
        dets = np.asarray(outs[self._dets][0], np.float32)
        labels = np.asarray(outs[self._labels][0]).astype(np.int64)
        m = (dets[:, 4] >= self.cfg.score_threshold) & np.isin(labels, self.cfg.classes)
        dets = dets[m]
        order = np.argsort(-dets[:, 4], kind="stable")[: self.cfg.max_detections]
        dets = dets[order]
        return _clip_boxes(lb.boxes_to_image(dets[:, :4]), rgb.shape), dets[:, 4].copy()


class BlazePoseDetector:
    """Adapter for the package's built-in BlazePose person detector
    (:class:`pose_perception.core.body.PoseDetector`, imported only when this detector is built).

    BlazePose finds people by their face and gives two keypoints: the hip centre and a point that
    sets the body's size and rotation. The person box is the axis-aligned bound of a rectangle
    centred on the hip centre, ``2 r`` long along the body axis and ``aspect * 2 r`` wide
    (``r`` = distance between the two points); the top-down crop then adds its padding.
    ``detector``: anything with ``detect(sampler, min_score=, max_detections=)`` returning objects
    with ``keypoints`` and ``score`` (default: the built-in detector on ``pose_detection.onnx``).
    """

    def __init__(self, detector: Any = None, aspect: float = 0.5,
                 min_score: Optional[float] = None, max_detections: Optional[int] = None,
                 providers=None, threads=None):
        if detector is None:
            detector = _make_builtin_pose_detector(providers, threads)
        self.detector, self.aspect = detector, float(aspect)
        self.min_score, self.max_detections = min_score, max_detections

    def detect(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        from ..crops import CropSampler

        dets = self.detector.detect(CropSampler(rgb), min_score=self.min_score,
                                    max_detections=self.max_detections)
        boxes = np.array([self.person_box(d.keypoints) for d in dets], np.float32).reshape(-1, 4)
        scores = np.array([float(d.score) for d in dets], np.float32)
        return _clip_boxes(boxes, rgb.shape), scores

    def person_box(self, keypoints: np.ndarray) -> np.ndarray:
        """xyxy bounds of the body rectangle from BlazePose detection keypoints 0 and 1."""
        kp = np.asarray(keypoints, np.float64)
        c, axis = kp[0], kp[1] - kp[0]
        r = float(np.hypot(*axis))
        if r < 1e-6:
            return np.array([c[0], c[1], c[0], c[1]])
        u = axis / r
        v = np.array([-u[1], u[0]])
        half_len, half_wid = r, self.aspect * r
        corners = np.array([c + s * half_len * u + t * half_wid * v
                            for s in (-1, 1) for t in (-1, 1)])
        return np.concatenate([corners.min(0), corners.max(0)])


def _make_builtin_pose_detector(providers=None, threads=None):
    try:
        from ..body import PoseDetector
        from ..inference import OnnxModel
    except ImportError as exc:
        raise RuntimeError("detector.type 'blazepose' needs the built-in pose pipeline "
                           f"(pose_perception.core.body), which cannot be imported: {exc}") from exc
    return PoseDetector(OnnxModel("pose_detection.onnx", providers=tuple(providers or ("cpu",)),
                                  threads=threads))


def build_detector(cfg: Optional[DetectorConfig | Dict[str, Any]], providers=None, threads=None,
                   base_dir: Optional[Path] = None) -> PersonDetector:
    """The detector a config asks for (``None`` or ``type: full_image``: the whole image)."""
    if cfg is None:
        return FullImageDetector()
    if not isinstance(cfg, DetectorConfig):
        cfg = DetectorConfig.from_dict(cfg)
    if cfg.type == "full_image":
        return FullImageDetector()
    if cfg.type == "yolo":
        return YoloDetector(cfg, providers, threads, base_dir)
    if cfg.type == "rtmdet":
        return RtmdetDetector(cfg, providers, threads, base_dir)
    return BlazePoseDetector(providers=providers, threads=threads,
                             min_score=cfg.options.get("min_score"),
                             max_detections=cfg.options.get("max_detections",
                                                            cfg.max_detections),
                             aspect=cfg.options.get("aspect", 0.5))


__all__ = ["BlazePoseDetector", "DetectorConfig", "FullImageDetector", "PersonDetector",
           "RtmdetDetector", "YoloDetector", "build_detector"]
