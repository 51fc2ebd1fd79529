"""Bring your own model: decoders for user-exported ONNX keypoint networks (ROS-free).

Families: top-down heatmaps (HRNet, SimpleBaseline, Hourglass, ViTPose), SimCC (RTMPose), one-stage
YOLO-pose, bottom-up OpenPose, and 68/98-point face landmarks (heatmap or regression). Start from
:func:`build_estimator` with a :class:`CustomModelConfig` (see ``config/custom_models/*.yaml`` and
``docs/bring_your_own_model.md``).
"""
from . import layouts  # noqa: F401  (registers coco_wholebody133, halpe26, wflw98, ...)
from ._onnx import ModelMetadataError
from .face_landmarks import FaceLandmarks
from .model import CustomKeypointStage, CustomModelConfig, build_estimator, load_estimator

__all__ = ["CustomKeypointStage", "CustomModelConfig", "FaceLandmarks", "ModelMetadataError",
           "build_estimator", "layouts", "load_estimator"]
