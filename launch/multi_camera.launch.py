"""Several cameras, one set of people: a pose node per camera (each in its own namespace and its
own process), the people_fusion node and the safety monitor on the fused people.

    ros2 launch pose_perception multi_camera.launch.py cameras:="/cam_front /cam_back"
    ros2 launch pose_perception multi_camera.launch.py cameras:=/path/to/cameras.yaml \
        robot_frame:=base_link
    # cameras on another machine: start only their pose nodes there (pose_nodes:=true
    # fusion:=false safety:=false) and the rest here, with the same ROS_DOMAIN_ID

``cameras``: namespaces (separated by spaces or commas; each camera driver publishes under its
namespace, e.g. /cam_front/color/image_raw) or a YAML file (see
pose_perception/core/camera_rig.py for the format: driver namespace, optical frame and mount
per camera, extra pose_node parameters). README.md, "Multi-camera fusion".
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pose_perception.launch_support import has_package as _has_package
from pose_perception.launch_support import share_dir as _share_dir

PACKAGE = "pose_perception"
ARGS = {
    "cameras": ("", "camera namespaces ('/cam_front /cam_back') or a cameras YAML file"),
    "params_file": ("", "parameter file of all nodes (default: the installed "
                        "config/pose_perception.yaml)"),
    "robot_frame": ("base_link", "frame the people are fused in and distances measured in"),
    "pose_nodes": ("true", "true: start one pose node per camera on this machine"),
    "fusion": ("true", "true: start the people_fusion node"),
    "safety": ("true", "true: start the safety monitor on the fused people (with coverage)"),
    "log_level": ("", "log level of the nodes (empty: ROS's default, info)"),
}


def _flag(context, name: str) -> bool:
    text = LaunchConfiguration(name).perform(context).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"{name}: expected true or false, got '{text}'")
    return text == "true"


def _nodes(context, *args, **kwargs):
    from pose_perception.core.camera_mount import static_transform_publisher_args
    from pose_perception.core.camera_rig import load_rig, rig_parameters, static_transforms
    rig = load_rig(LaunchConfiguration("cameras").perform(context))
    robot_frame = LaunchConfiguration("robot_frame").perform(context) or "base_link"
    params_file = LaunchConfiguration("params_file").perform(context) or \
        os.path.join(_share_dir(__file__), "config", "pose_perception.yaml")
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f"params_file '{params_file}' does not exist")
    log_level = LaunchConfiguration("log_level").perform(context)
    ros_args = {"ros_arguments": ["--log-level", log_level]} if log_level else {}
    actions, transforms = [], []
    if _has_package("tf2_ros"):      # the mounts as TF; else as every node's static_transforms
        for c in rig:
            if c.mount:
                actions.append(Node(
                    package="tf2_ros", executable="static_transform_publisher",
                    name=f"mount_{c.namespace.strip('/').replace('/', '_')}", output="log",
                    arguments=static_transform_publisher_args(robot_frame, c.frame, c.mount)))
    else:
        transforms = static_transforms(rig, robot_frame)
    params = rig_parameters(rig, robot_frame, transforms)
    common = dict(package=PACKAGE, output="screen", emulate_tty=True, **ros_args)
    if _flag(context, "pose_nodes"):
        for c in rig:        # each pose node in its own process and namespace
            actions.append(Node(executable="pose_node", name="pose_node", namespace=c.namespace,
                                parameters=[params_file, params["pose_node"][c.namespace]],
                                **common))
    if _flag(context, "fusion"):
        actions.append(Node(executable="people_fusion_node", name="people_fusion",
                            parameters=[params["people_fusion"]], **common))
    if _flag(context, "safety"):
        actions.append(Node(executable="safety_monitor_node", name="safety_monitor",
                            parameters=[params_file, params["safety_monitor"]], **common))
    return actions


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, (default, text) in ARGS.items()]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
