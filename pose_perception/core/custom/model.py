"""Bring-your-own-model entry point: a config (from YAML) -> a checked, ready estimator.

``build_estimator(config)`` loads the ONNX file, checks its metadata against the config (input rank
and size, output shapes against the family and the keypoint layout, normalisation stated) and
returns an object with ``estimate(rgb)``: ``list[Person]`` for the body families (``Person.body``
in the declared layout) and ``list[FaceLandmarks]`` for the face families. Errors name the file and
the mismatch (:class:`ModelMetadataError`).

Families: ``heatmap`` (HRNet, SimpleBaseline, Hourglass, ViTPose, FastPose), ``simcc`` (RTMPose),
``yolo_pose`` (Ultralytics), ``openpose`` (CMU OpenPose, bottom-up), ``face_heatmap`` and
``face_regression`` (68 / 98-point face landmarks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Tuple, Union

import numpy as np

from ._onnx import (ModelMetadataError, check_image_input, check_normalisation, create_session,
                    inputs_of, metadata_of, outputs_of, parse_meta_value, resolve_model_path)
from .detector import DetectorConfig, PersonDetector, build_detector
from .face_landmarks import RegressionDecoder
from .heatmap import ACTIVATIONS, REFINE_MODES, HeatmapDecoder
from .layouts import flip_pairs, flip_permutation
from .openpose import CONCAT_ORDERS, OpenPoseEstimator, OpenPoseParams
from .preprocess import InputNormaliser
from .simcc import SCORE_MODES, SimccDecoder
from .topdown import TopDownEstimator
from .yolo_pose import YoloPoseEstimator
from ..layouts import get_layout
from ..types import FrameResult

FAMILIES = ("heatmap", "simcc", "yolo_pose", "openpose", "face_heatmap", "face_regression")
TOP_DOWN = ("heatmap", "simcc", "face_heatmap", "face_regression")
# normalisation fixed by the family's toolkit: (mean, std, channel order)
_FAMILY_NORMALISATION = {
    "yolo_pose": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), "rgb"),
    "openpose": ((128.0, 128.0, 128.0), (256.0, 256.0, 256.0), "bgr"),
}


class Estimator(Protocol):
    def estimate(self, rgb: np.ndarray) -> list: ...


@dataclass
class CustomModelConfig:
    """Everything needed to run a user's ONNX keypoint model. Sizes are [width, height]."""

    family: str
    path: str
    layout: str
    input_size: Optional[Tuple[int, int]] = None   # None: taken from the model (must be static)
    mean: Optional[Tuple[float, ...]] = None       # pixel units 0-255, model channel order
    std: Optional[Tuple[float, ...]] = None
    channel_order: Optional[str] = None            # 'rgb' | 'bgr' (family default: rgb)
    input_layout: str = "NCHW"                     # 'NCHW' | 'NHWC'
    output_layout: str = "auto"                    # heatmaps: 'auto' | 'NCHW' | 'NHWC'
    output_names: Optional[Tuple[str, ...]] = None  # pick outputs by name
    # top-down
    padding: float = 1.25
    flip_test: bool = False
    flip_pairs: Optional[Tuple[Tuple[int, int], ...]] = None   # default: the layout's
    udp: bool = False
    refine: str = "dark"                           # heatmaps: 'dark' | 'quarter' | 'none'
    blur_kernel: int = 11                          # DARK Gaussian modulation kernel
    heatmap_activation: str = "none"               # 'sigmoid' for exports ending in logits
    split_ratio: float = 2.0                       # SimCC
    simcc_score: str = "min"                       # SimCC: 'min' (MMPose) | 'mean' (rtmlib)
    regression_units: str = "normalized"           # face_regression: 'normalized' | 'pixels'
    score_output: Optional[str] = None             # face_regression: per-point score output
    min_person_score: float = 0.0                  # top-down: drop people below (mean kp score)
    detector: Optional[DetectorConfig] = None      # top-down: where the boxes come from
    # one-stage / bottom-up
    score_threshold: float = 0.25                  # yolo_pose person score
    iou_threshold: float = 0.7                     # yolo_pose NMS
    max_people: int = 20
    openpose: OpenPoseParams = field(default_factory=OpenPoseParams)
    concat_order: str = "heatmaps_first"           # openpose single-output exports
    # runtime
    providers: Optional[Tuple[Any, ...]] = None    # onnxruntime providers (default CPU)
    threads: Optional[int] = None
    name: str = ""
    base_dir: Optional[str] = None                 # where relative paths are looked up first

    @classmethod
    def from_dict(cls, d: Dict[str, Any], base_dir: Optional[str | Path] = None
                  ) -> "CustomModelConfig":
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown custom model config keys {unknown}; known: "
                             f"{sorted(known)}")
        missing = [k for k in ("family", "path", "layout") if not d.get(k)]
        if missing:
            raise ValueError(f"custom model config needs {missing}")
        if d.get("input_size") is not None:
            d["input_size"] = _size(d["input_size"])
        for key in ("mean", "std", "output_names", "providers"):
            if d.get(key) is not None:
                d[key] = tuple(np.atleast_1d(d[key]).tolist()) if key in ("mean", "std") \
                    else tuple(d[key])
        if d.get("flip_pairs") is not None:
            d["flip_pairs"] = tuple((int(a), int(b)) for a, b in d["flip_pairs"])
        if isinstance(d.get("openpose"), dict):
            op_known = {f.name for f in fields(OpenPoseParams)}
            bad = sorted(set(d["openpose"]) - op_known)
            if bad:
                raise ValueError(f"unknown openpose keys {bad}; known: {sorted(op_known)}")
            d["openpose"] = OpenPoseParams(**d["openpose"])
        if isinstance(d.get("detector"), dict):
            d["detector"] = DetectorConfig.from_dict(d["detector"])
        if base_dir is not None and d.get("base_dir") is None:
            d["base_dir"] = str(base_dir)
        cfg = cls(**d)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> "CustomModelConfig":
        """A YAML file holding the config mapping (optionally under a ``custom_model:`` key)."""
        import yaml

        path = Path(path)
        with open(path) as f:
            data = yaml.safe_load(f)
        if isinstance(data, dict) and set(data) == {"custom_model"}:
            data = data["custom_model"]
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of custom model settings")
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def validate(self) -> None:
        """Value checks that need no model file."""
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, not '{self.family}'")
        get_layout(self.layout)       # raises for an unknown layout
        for key, val, allowed in (("channel_order", self.channel_order, (None, "rgb", "bgr")),
                                  ("input_layout", self.input_layout, ("NCHW", "NHWC")),
                                  ("output_layout", self.output_layout, ("auto", "NCHW", "NHWC")),
                                  ("refine", self.refine, REFINE_MODES),
                                  ("heatmap_activation", self.heatmap_activation, ACTIVATIONS),
                                  ("simcc_score", self.simcc_score, SCORE_MODES),
                                  ("regression_units", self.regression_units,
                                   ("normalized", "pixels")),
                                  ("concat_order", self.concat_order, CONCAT_ORDERS)):
            if val not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, not '{val}'")
        if self.padding <= 0 or self.split_ratio <= 0:
            raise ValueError("padding and split_ratio must be > 0")
        if self.family == "openpose" and self.layout not in ("openpose18", "body25"):
            raise ValueError(f"openpose needs layout openpose18 or body25, not '{self.layout}'")
        if self.flip_test and self.family in ("yolo_pose", "openpose"):
            raise ValueError(f"flip_test is for top-down families, not '{self.family}'")


def _size(v) -> Tuple[int, int]:
    if isinstance(v, dict):
        v = (v["width"], v["height"])
    v = [int(x) for x in np.atleast_1d(v)]
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or min(v) <= 0:
        raise ValueError(f"input_size must be [width, height] (or one number), got {v}")
    return v[0], v[1]


def _model_input_size(session, layout: str, name: str) -> Tuple[int, int]:
    shape = inputs_of(session)[0].shape
    if len(shape) == 4:
        h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
        if h is not None and w is not None:
            return w, h
    raise ModelMetadataError(f"{name}: the model's input size is dynamic "
                             f"{list(shape)}: set input_size [width, height] in the config")


def build_estimator(config: Union[CustomModelConfig, Dict[str, Any]],
                    detector: Optional[PersonDetector] = None) -> Estimator:
    """Load and check the model, return its estimator (``estimate(rgb)``).

    ``detector`` overrides the config's detector for top-down families.
    """
    cfg = config if isinstance(config, CustomModelConfig) else CustomModelConfig.from_dict(config)
    cfg.validate()
    base = Path(cfg.base_dir) if cfg.base_dir else None
    path = resolve_model_path(cfg.path, base)
    name = path.name
    session = create_session(path, cfg.providers, cfg.threads)
    input_size = cfg.input_size or _model_input_size(session, cfg.input_layout, name)
    inp, batch_dynamic = check_image_input(session, name, input_size, cfg.input_layout)
    mean, std, order = cfg.mean, cfg.std, cfg.channel_order
    fam_norm = _FAMILY_NORMALISATION.get(cfg.family)
    if fam_norm is not None:
        mean = fam_norm[0] if mean is None else mean
        std = fam_norm[1] if std is None else std
        order = order or fam_norm[2]
    mean, std = check_normalisation(name, mean, std)
    norm = InputNormaliser(mean, std, order or "rgb", cfg.input_layout)
    k = get_layout(cfg.layout).size
    outputs = outputs_of(session)

    if cfg.family == "yolo_pose":
        kdims = _check_yolo_metadata(session, name, cfg.layout, k, input_size)
        if len(outputs) < 1:
            raise ModelMetadataError(f"{name}: the model has no outputs")
        est: Estimator = YoloPoseEstimator(session, name, inp.name, outputs[0], cfg.layout,
                                           input_size, norm, kdims, cfg.score_threshold,
                                           cfg.iou_threshold, cfg.max_people)
    elif cfg.family == "openpose":
        hw = inp.shape[2:4] if cfg.input_layout == "NCHW" else inp.shape[1:3]
        fixed = all(d is not None for d in hw)
        est = OpenPoseEstimator(session, name, inp.name, cfg.layout, input_size, fixed, norm,
                                cfg.openpose, cfg.concat_order)
    else:
        if cfg.family in ("heatmap", "face_heatmap"):
            decoder = HeatmapDecoder(k, input_size, cfg.refine, cfg.blur_kernel, cfg.udp,
                                     cfg.output_names[0] if cfg.output_names else None,
                                     cfg.output_layout, cfg.heatmap_activation)
        elif cfg.family == "simcc":
            decoder = SimccDecoder(k, input_size, cfg.split_ratio, cfg.simcc_score,
                                   cfg.output_names)
        else:
            decoder = RegressionDecoder(k, input_size, cfg.regression_units,
                                        cfg.output_names[0] if cfg.output_names else None,
                                        cfg.score_output)
        decoder.check(outputs, name)
        perm = None
        if cfg.flip_test:
            pairs = cfg.flip_pairs if cfg.flip_pairs is not None else flip_pairs(cfg.layout)
            perm = flip_permutation(cfg.layout, pairs)
        if detector is None:
            detector = build_detector(cfg.detector, cfg.providers, cfg.threads, base)
        est = TopDownEstimator(session, inp.name, batch_dynamic, decoder, cfg.layout, input_size,
                               norm, detector, cfg.padding, cfg.udp, perm,
                               "face" if cfg.family.startswith("face") else "body",
                               cfg.min_person_score)
    est.config = cfg          # type: ignore[attr-defined]
    est.model_path = path     # type: ignore[attr-defined]
    return est


def _check_yolo_metadata(session, name: str, layout: str, k: int,
                         input_size: Tuple[int, int]) -> int:
    """Ultralytics writes ``task``, ``kpt_shape`` and ``imgsz``; check them when present.
    Returns the values per keypoint (3 = x, y, visibility; 2 = x, y)."""
    meta = metadata_of(session)
    task = meta.get("task")
    if task is not None and task != "pose":
        raise ModelMetadataError(f"{name}: Ultralytics task is '{task}', not 'pose'")
    kdims = 3
    if "kpt_shape" in meta:
        shape = parse_meta_value(meta["kpt_shape"])
        if isinstance(shape, (list, tuple)) and len(shape) == 2:
            if int(shape[0]) != k:
                raise ModelMetadataError(f"{name}: kpt_shape {list(shape)} has {shape[0]} "
                                         f"keypoints but layout '{layout}' has {k}")
            kdims = int(shape[1])
    if "imgsz" in meta:
        sz = parse_meta_value(meta["imgsz"])
        if isinstance(sz, (list, tuple)) and len(sz) == 2 and \
                (int(sz[1]), int(sz[0])) != tuple(input_size):
            raise ModelMetadataError(f"{name}: exported imgsz {list(sz)} (height, width) differs "
                                     f"from input_size [width, height] {list(input_size)}")
    return kdims


def load_estimator(yaml_path: str | Path, detector: Optional[PersonDetector] = None
                   ) -> Estimator:
    """``build_estimator(CustomModelConfig.from_yaml(yaml_path))``."""
    return build_estimator(CustomModelConfig.from_yaml(yaml_path), detector)


class CustomKeypointStage:
    """A body-family custom estimator behind the keypoint-stage interface of
    :class:`pose_perception.core.perception.Perception` (``process(rgb) -> FrameResult``,
    ``reset()``, ``provider``), so that lifting, tracking and smoothing run on its people."""

    def __init__(self, estimator: Estimator):
        cfg = getattr(estimator, "config", None)
        if cfg is not None and cfg.family.startswith("face"):
            raise ValueError(f"'{cfg.family}' gives faces, not people: it cannot be the body "
                             "keypoint stage")
        self.estimator = estimator

    @property
    def provider(self) -> str:
        session = getattr(self.estimator, "session", None)
        return session.get_providers()[0] if session is not None else "CPUExecutionProvider"

    def reset(self) -> None:
        """Custom models keep no state between frames."""

    def process(self, rgb: np.ndarray, stamp_s: Optional[float] = None) -> FrameResult:
        t = time.perf_counter()
        persons = self.estimator.estimate(rgb)
        return FrameResult(persons=persons, detector_ran=True,
                           timings_ms={"custom_model": (time.perf_counter() - t) * 1e3})


__all__ = ["FAMILIES", "CustomKeypointStage", "CustomModelConfig", "Estimator",
           "ModelMetadataError", "build_estimator", "load_estimator"]
