"""pose_node's parameters: its own (topics, depth, synchronisation, providers, outputs) and the
``perception.*`` ones from the core's dataclasses; and the factory of the real pipeline."""
from __future__ import annotations

from typing import Any, Dict, List

from ..core.inference import DEFAULT_PROVIDERS
from ..core.overlap import OVERLAP_MODES
from ..core.precision import PRECISIONS
from .node_support import camera_param_specs
from .params import ParamSpec, at_least, dataclass_specs, non_negative, positive

# keypoint settings that have their own top-level parameter
_KEYPOINT_TOP_LEVEL = ("enable_face", "enable_hands", "providers", "require_gpu", "precision")


def node_param_specs() -> List[ParamSpec]:
    """The node's own parameters (the ``perception.*`` ones come from the core's dataclasses)."""
    S, C = ParamSpec, camera_param_specs()
    return [
        C["camera_namespace"],
        S("color_image_topic", "color/image_raw", "str", "colour image (rgb8, bgr8, mono8, "
          "rgba8, bgra8, yuv422/uyvy, yuyv, mono16)"),
        C["color_info_topic"],
        C["depth_image_topic"],
        C["depth_info_topic"],
        S("use_depth", True, "bool", "false: RGB-only mode (2D keypoints, every 3D field invalid)"),
        C["depth_registered"],
        C["depth_unit_scale"],
        C["depth_min_m"],
        C["depth_max_m"],
        S("sync_slop_s", 0.1, "float", "max stamp difference of a colour/depth pair [s]",
          check=non_negative),
        S("sync_queue_size", 10, "int", "messages per input kept by the synchroniser",
          check=at_least(1)),
        S("depth_wait_s", 1.0, "float", "without a synchronised pair for this long, colour images "
          "are processed alone (2D) [s]", check=positive),
        C["qos_reliability"],
        C["qos_depth"],
        S("use_gpu", True, "bool", "try GPU execution providers first (TensorRT, CUDA); false: "
          "only the CPU ones of 'providers' (OpenVINO, onnxruntime's CPU)"),
        S("providers", list(DEFAULT_PROVIDERS), "str_list",
          "execution providers in order of preference; those not installed are skipped "
          "(openvino: the openvino package's CPU runtime)"),
        S("require_gpu", False, "bool", "fail at start when no GPU provider works"),
        S("precision", "auto", "str", "model precision: auto (fp16 on GPU providers for the "
          "models whose fp16 accuracy was checked, fp32 on CPU); fp32; fp16 (GPU providers "
          "only, CPU stays fp32); fp16-emulated (accuracy checks on CPU, slow)",
          choices=PRECISIONS),
        S("enable_face", True, "bool", "face landmarks (468 points) and head pose"),
        S("enable_hands", False, "bool", "hand keypoints (21 per hand)"),
        S("face_landmarks_layout", "face468", "str", "layout of FaceLandmarks.landmarks",
          choices=("face468", "ibug68")),
        S("target_frame", "", "str", "frame of the published 3D fields; empty = the colour "
          "camera's optical frame (image header). Looked up in TF at the image stamp"),
        S("publish_rep155", True, "bool", "also publish the REP-155 (ROS4HRI) topics and TF "
          "frames /humans/... where hri_msgs is installed"),
        S("attention_frame", "", "str", "the robot's point for attention and engagement: the "
          "origin of this frame (looked up in TF at the image stamp); empty = the camera"),
        S("up_frame", "", "str", "a frame whose +z axis points up (against gravity), e.g. the "
          "robot's base_link, for posture, falls and raised hands; empty = target_frame, and "
          "with neither the camera is assumed level (up = -y of its optical frame)"),
        C["tf_timeout_s"],
        C["static_transforms"],
        S("frame_overlap", "auto", "str", "finish frame N (3D lifting, tracking, body language, "
          "conversion, publishing) on a second thread while the models run on frame N+1: "
          "always | never | auto (= on GPU execution providers; on a CPU the two halves take "
          "cores from each other: a higher rate for more latency)", choices=OVERLAP_MODES),
        S("publish_markers", True, "bool", "RViz markers (published while subscribed)"),
        S("marker_lifetime_s", 0.5, "float", "lifetime of every marker [s]", check=positive),
        S("debug_image", True, "bool", "annotated colour image (drawn only while subscribed)"),
        S("diagnostics_period_s", 1.0, "float", "period of /diagnostics [s]", check=positive),
        C["log_period_s"],
    ]


def perception_param_specs() -> List[ParamSpec]:
    """``perception.<section>.<field>`` parameters from PerceptionConfig's dataclasses."""
    from ..core import perception as P
    specs: List[ParamSpec] = []
    sections = {"keypoints": P.KeypointConfig, "lifting": P.LiftingConfig,
                "association": P.AssociationConfig, "tracking": P.TrackerConfig,
                "smoothing": P.SmootherConfig, "gaze": P.GazeConfig,
                "attention": P.AttentionConfig, "engagement": P.EngagementConfig,
                "body_language": P.BodyLanguageConfig, "posture": P.PostureConfig,
                "body_gestures": P.BodyGestureConfig, "pointing": P.PointingConfig}
    for name, cls in sections.items():
        exclude = _KEYPOINT_TOP_LEVEL if name == "keypoints" else ()
        specs += dataclass_specs(cls, f"perception.{name}.", exclude)
    specs += dataclass_specs(P.PerceptionConfig, "perception.",
                             exclude=tuple(sections))
    return specs


def default_perception_factory(config: Dict[str, Any]):
    """Builds the real pipeline (loads the ONNX models)."""
    from ..core.perception import Perception, PerceptionConfig
    return Perception(PerceptionConfig.from_dict(config))
