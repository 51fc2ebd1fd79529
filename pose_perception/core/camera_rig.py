"""A rig of several cameras for ``launch/multi_camera.launch.py``: which pose nodes to start and
the parameters of each node (pose nodes, people_fusion, safety_monitor). ROS-free, so the
launch file's logic is tested without ``ros2 launch``.

The cameras come from a YAML file or a plain list of namespaces::

    cameras:
      - namespace: /cam_front            # the pose node's namespace (and the camera's name)
        camera_namespace: /cam_front     # the camera driver's topics (default: namespace)
        frame: cam_front_color_optical_frame   # optical frame, for mount
        mount: "0.2 0 1.2 0 0.2 0"       # x y z roll pitch yaw in robot_frame (optional; else TF)
        parameters: {use_gpu: false}     # extra pose_node parameters (optional)
      - namespace: /cam_back
        ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence

import yaml

from .camera_mount import static_transform_spec


@dataclass
class RigCamera:
    namespace: str
    camera_namespace: str = ""           # empty: the namespace
    frame: str = ""                      # optical frame (needed with mount)
    mount: str = ""                      # "x y z roll pitch yaw" in robot_frame; empty: TF
    parameters: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ns = str(self.namespace).strip()
        if not ns:
            raise ValueError("a camera needs a namespace")
        self.namespace = ns if ns.startswith("/") else "/" + ns
        self.camera_namespace = self.camera_namespace or self.namespace
        if self.mount and not self.frame:
            raise ValueError(f"camera {self.namespace}: 'mount' needs 'frame' (its optical frame)")


def load_rig(cameras: str) -> List[RigCamera]:
    """Cameras from a YAML file path, or from namespaces separated by commas or spaces."""
    text = cameras.strip()
    if text.endswith((".yaml", ".yml")):
        with open(text) as f:
            doc = yaml.safe_load(f) or {}
        entries = doc.get("cameras") if isinstance(doc, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{text}: needs a non-empty 'cameras' list")
        rig = [RigCamera(**e) if isinstance(e, dict) else RigCamera(str(e)) for e in entries]
    else:
        rig = [RigCamera(n) for n in text.replace(",", " ").split()]
    if not rig:
        raise ValueError("no cameras given")
    names = [c.namespace for c in rig]
    if len(set(names)) != len(names):
        raise ValueError(f"a camera namespace appears twice: {names}")
    return rig


def static_transforms(rig: Sequence[RigCamera], robot_frame: str) -> List[str]:
    """``static_transforms`` entries for the mounted cameras (robot_frame -> optical frame)."""
    return [static_transform_spec(robot_frame, c.frame, c.mount) for c in rig if c.mount]


def rig_parameters(rig: Sequence[RigCamera], robot_frame: str,
                   transforms: Sequence[str] = ()) -> Dict[str, Any]:
    """Parameter overrides: ``{'pose_node': {namespace: {...}}, 'people_fusion': {...},
    'safety_monitor': {...}}``; ``transforms`` go to every node's static_transforms (where no
    tf2_ros publishes the mounts)."""
    names = [c.namespace for c in rig]
    pose = {}
    for c in rig:
        p = {"camera_namespace": c.camera_namespace, **c.parameters}
        if transforms:
            p["static_transforms"] = list(transforms)
        pose[c.namespace] = p
    fusion = {"cameras": names, "fusion_frame": robot_frame}
    infos = []
    for c in rig:
        topic = str(c.parameters.get("color_info_topic", "color/camera_info"))
        infos.append(topic if topic.startswith("/") else
                     c.camera_namespace.rstrip("/") + "/" + topic)
    safety = {"input_topic": "/fused/skeletons", "faces_topic": "", "robot_frame": robot_frame,
              "coverage_cameras": names, "coverage_info_topics": infos}
    if transforms:
        fusion["static_transforms"] = list(transforms)
        safety["static_transforms"] = list(transforms)
    return {"pose_node": pose, "people_fusion": fusion, "safety_monitor": safety}
