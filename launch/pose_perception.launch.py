"""Launch the pose perception node, optionally with the safety monitor, RViz and a sample camera.

    ros2 launch pose_perception pose_perception.launch.py
    ros2 launch pose_perception pose_perception.launch.py camera_namespace:=/camera/camera \
        safety:=true robot_frame:=base_link rviz:=true
    ros2 launch pose_perception pose_perception.launch.py sample_camera:=true   # no camera needed

Arguments left empty keep the value of ``params_file`` (default: the installed
config/pose_perception.yaml). Topic names and remaps for common cameras: README.md,
"ROS 2 interface".
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "pose_perception"

# launch argument -> (pose_node parameter, kind); empty arguments are not passed
NODE_OVERRIDES = {
    "camera_namespace": ("camera_namespace", str),
    "color_image_topic": ("color_image_topic", str),
    "color_info_topic": ("color_info_topic", str),
    "depth_image_topic": ("depth_image_topic", str),
    "depth_info_topic": ("depth_info_topic", str),
    "use_depth": ("use_depth", bool),
    "depth_registered": ("depth_registered", bool),
    "use_gpu": ("use_gpu", bool),
    "precision": ("precision", str),
    "enable_face": ("enable_face", bool),
    "enable_hands": ("enable_hands", bool),
    "target_frame": ("target_frame", str),
    "sync_slop_s": ("sync_slop_s", float),
}
ARG_HELP = {
    "params_file": "parameter file of all nodes (default: the installed "
                   "config/pose_perception.yaml)",
    "camera_namespace": "namespace of the camera topics, e.g. /camera/camera (RealSense 4.x)",
    "color_image_topic": "colour image topic (relative to camera_namespace or absolute)",
    "color_info_topic": "colour CameraInfo topic",
    "depth_image_topic": "depth image topic",
    "depth_info_topic": "depth CameraInfo topic",
    "use_depth": "true/false: false = RGB-only (2D) mode",
    "depth_registered": "true/false: false = reproject depth with the TF extrinsics",
    "use_gpu": "true/false: try TensorRT/CUDA first",
    "precision": "fp32, fp16 or auto (fp16 on GPU providers only)",
    "enable_face": "true/false: face landmarks and head pose",
    "enable_hands": "true/false: hand keypoints",
    "target_frame": "frame of the published 3D (empty: colour optical frame)",
    "sync_slop_s": "max colour/depth stamp difference [s]",
    "safety": "true: also start the safety monitor",
    "robot_frame": "safety monitor's robot frame (empty: keep the params_file value)",
    "rviz": "true: start RViz with config/pose_perception.rviz",
    "sample_camera": "true: also publish recorded/sample frames as a camera would",
    "source": "sample camera source folder (empty: built-in synthetic sample)",
    "log_level": "log level of the nodes",
}
DEFAULTS = {"params_file": "", "safety": "false", "robot_frame": "", "rviz": "false",
            "sample_camera": "false", "source": "", "log_level": "info"}


def _share_dir() -> str:
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(PACKAGE)
    except Exception:  # running from a source tree
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _as(kind, text: str):
    if kind is bool:
        low = text.strip().lower()
        if low not in ("true", "false"):
            raise ValueError(f"expected true or false, got '{text}'")
        return low == "true"
    return kind(text)


def _flag(context, name: str) -> bool:
    return _as(bool, LaunchConfiguration(name).perform(context))


def pose_node_overrides(context) -> dict:
    """pose_node parameters given as launch arguments (empty arguments keep params_file)."""
    overrides = {}
    for arg, (param, kind) in NODE_OVERRIDES.items():
        text = LaunchConfiguration(arg).perform(context)
        if text != "":
            overrides[param] = _as(kind, text)
    return overrides


def _nodes(context, *args, **kwargs):
    share = _share_dir()
    params_file = LaunchConfiguration("params_file").perform(context) or \
        os.path.join(share, "config", "pose_perception.yaml")
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f"params_file '{params_file}' does not exist")
    log_level = LaunchConfiguration("log_level").perform(context)
    overrides = pose_node_overrides(context)
    ros_args = ["--log-level", log_level]
    actions = [Node(package=PACKAGE, executable="pose_node", name="pose_node", output="screen",
                    emulate_tty=True, parameters=[params_file, overrides],
                    arguments=["--ros-args"] + ros_args)]
    if _flag(context, "safety"):
        safety_over = {}
        robot_frame = LaunchConfiguration("robot_frame").perform(context)
        if robot_frame:
            safety_over["robot_frame"] = robot_frame
        actions.append(Node(package=PACKAGE, executable="safety_monitor_node",
                            name="safety_monitor", output="screen", emulate_tty=True,
                            parameters=[params_file, safety_over],
                            arguments=["--ros-args"] + ros_args))
    if _flag(context, "sample_camera"):
        cam_over = {}
        for key in ("source", "camera_namespace", "color_image_topic", "color_info_topic",
                    "depth_image_topic", "depth_info_topic"):
            text = LaunchConfiguration(key).perform(context)
            if text:
                cam_over[key] = text
        actions.append(Node(package=PACKAGE, executable="sample_camera_node",
                            name="sample_camera", output="screen", emulate_tty=True,
                            parameters=[params_file, cam_over],
                            arguments=["--ros-args"] + ros_args))
    if _flag(context, "rviz"):
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
                            arguments=["-d", os.path.join(share, "config",
                                                          "pose_perception.rviz")]))
    return actions


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=DEFAULTS.get(name, ""),
                                  description=text) for name, text in ARG_HELP.items()]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
