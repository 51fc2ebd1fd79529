"""Launch the pose perception node, optionally with the safety monitor, RViz and a sample camera.

    ros2 launch pose_perception pose_perception.launch.py
    ros2 launch pose_perception pose_perception.launch.py camera_namespace:=/camera/camera \
        safety:=true robot_frame:=base_link rviz:=true
    ros2 launch pose_perception pose_perception.launch.py sample_camera:=true   # no camera needed
    ros2 launch pose_perception pose_perception.launch.py safety:=true \
        camera_mount:="0.1 0 1.2 0 0.2 0" camera_frame:=camera_color_optical_frame

Arguments left empty keep the value of ``params_file`` (default: the installed
config/pose_perception.yaml). Topic names and remaps for common cameras: README.md,
"ROS 2 interface".
"""
import os

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler,
                            SetEnvironmentVariable)
from launch.event_handlers import OnShutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pose_perception.launch_support import has_package as _has_package
from pose_perception.launch_support import share_dir as _share_dir

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
    "camera_mount": "the camera's pose in robot_frame, 'x y z roll pitch yaw' (metres, radians; "
                    "x forward along the optical axis, z up), for robots without the camera in "
                    "TF: published as a static transform robot_frame -> camera_frame (tf2_ros), "
                    "else given to the nodes as static_transforms. Empty: none, except with the "
                    "built-in sample camera (1.5 m up, looking along x)",
    "camera_frame": "the colour images' optical frame for camera_mount (empty: "
                    "camera_color_optical_frame, or the built-in sample's frame)",
    "rviz": "true: start RViz with config/pose_perception.rviz",
    "sample_camera": "true: also publish recorded/sample frames as a camera would",
    "source": "sample camera source folder (empty: built-in synthetic sample)",
    "log_level": "log level of the nodes (empty: ROS's default, info)",
    "one_process": "true: pose_node, the safety monitor and the sample camera (those started) in "
                   "one process (pose_perception_nodes) instead of one each",
    "dds_transport": "Fast DDS built-in transports of the nodes started here: large_data (the "
                     "default: shared memory + TCP, what images on one machine need; give the "
                     "camera driver FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA too), default (Fast "
                     "DDS's own UDP + shared memory), or keep (leave the environment as it is). "
                     "An environment that already sets FASTDDS_BUILTIN_TRANSPORTS wins",
}
DEFAULTS = {"params_file": "", "safety": "false", "robot_frame": "", "rviz": "false",
            "sample_camera": "false", "source": "", "log_level": "", "camera_mount": "",
            "camera_frame": "", "dds_transport": "large_data", "one_process": "false"}
DEFAULT_CAMERA_FRAME = "camera_color_optical_frame"
# the nodes pose_perception_nodes adds to pose_node, and its option for each
ONE_PROCESS_OPTIONS = {"safety_monitor": "--safety", "sample_camera": "--sample-camera"}


def _node_params(params_file: str, node: str) -> dict:
    """The ros__parameters of ``node`` in the parameter file (keys '/**/node' or 'node')."""
    import yaml
    with open(params_file) as f:
        doc = yaml.safe_load(f) or {}
    for key in (f"/**/{node}", node, f"/{node}"):
        if isinstance(doc.get(key), dict):
            return doc[key].get("ros__parameters", {}) or {}
    return {}


def camera_mount_actions(context, params_file: str, builtin_sample: bool):
    """(extra actions, static_transforms entries) for the camera_mount argument: a tf2_ros
    static_transform_publisher where tf2_ros is installed, else a static_transforms entry for
    the nodes. Without camera_mount, the built-in sample camera gets its own mount."""
    from pose_perception.core.camera_mount import (static_transform_publisher_args,
                                                   static_transform_spec)
    from pose_perception.sample import SAMPLE_CAMERA_MOUNT, SAMPLE_FRAME_ID
    mount = LaunchConfiguration("camera_mount").perform(context).strip()
    child = LaunchConfiguration("camera_frame").perform(context).strip()
    if not mount and builtin_sample:
        mount = SAMPLE_CAMERA_MOUNT
    if not mount:
        return [], []
    child = child or (SAMPLE_FRAME_ID if builtin_sample else DEFAULT_CAMERA_FRAME)
    parent = (LaunchConfiguration("robot_frame").perform(context)
              or _node_params(params_file, "safety_monitor").get("robot_frame") or "base_link")
    if _has_package("tf2_ros"):
        return [Node(package="tf2_ros", executable="static_transform_publisher",
                     name="camera_mount_publisher", output="log",
                     arguments=static_transform_publisher_args(parent, child, mount))], []
    return [], [static_transform_spec(parent, child, mount)]


def _with_transforms(params_file: str, node: str, specs: list) -> dict:
    """static_transforms override: the parameter file's entries plus ``specs``."""
    if not specs:
        return {}
    own = [s for s in _node_params(params_file, node).get("static_transforms", []) or [] if s]
    return {"static_transforms": own + specs}


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


def one_process_node(params_file: str, nodes: dict, ros_args: dict) -> list:
    """One pose_perception_nodes process running ``nodes`` ({name: (executable, overrides)}),
    and the removal of its parameter file when the launch shuts down. Its nodes keep their own
    names, so no ``name=`` here (it would rename all of them), and the overrides go in a
    temporary parameter file keyed by node name (a dict would reach every node, and a node
    refuses parameters it does not know)."""
    import tempfile

    import yaml
    per_node = {f"/**/{name}": {"ros__parameters": over}
                for name, (_, over) in nodes.items() if over}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="pose_perception_nodes_",
                                     delete=False) as f:
        yaml.safe_dump(per_node, f)
    options = [ONE_PROCESS_OPTIONS[n] for n in nodes if n in ONE_PROCESS_OPTIONS]
    node = Node(package=PACKAGE, executable="pose_perception_nodes", output="screen",
                emulate_tty=True, arguments=options, parameters=[params_file, f.name],
                **ros_args)
    return [node, RegisterEventHandler(OnShutdown(
        on_shutdown=lambda event, context, path=f.name: _remove(path)))]


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def transport_actions(context) -> list:
    """FASTDDS_BUILTIN_TRANSPORTS for the nodes of this launch (argument dds_transport)."""
    choice = LaunchConfiguration("dds_transport").perform(context).strip().lower()
    if choice not in ("large_data", "default", "keep"):
        raise ValueError(f"dds_transport must be large_data, default or keep, not '{choice}'")
    if choice == "keep" or os.environ.get("FASTDDS_BUILTIN_TRANSPORTS"):
        return []
    return [SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", choice.upper())]


def _nodes(context, *args, **kwargs):
    share = _share_dir(__file__)
    params_file = LaunchConfiguration("params_file").perform(context) or \
        os.path.join(share, "config", "pose_perception.yaml")
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f"params_file '{params_file}' does not exist")
    log_level = LaunchConfiguration("log_level").perform(context)
    # launch_ros puts its own --ros-args block (name, parameters) on every node's command line;
    # ROS arguments of ours would open a second one: only a log level that is asked for
    ros_args = {"ros_arguments": ["--log-level", log_level]} if log_level else {}
    sample = _flag(context, "sample_camera")
    mount_actions, transforms = camera_mount_actions(
        context, params_file, sample and not LaunchConfiguration("source").perform(context))
    overrides = pose_node_overrides(context)
    overrides.update(_with_transforms(params_file, "pose_node", transforms))
    # node name -> (executable, its overrides of the parameter file)
    nodes = {"pose_node": ("pose_node", overrides)}
    if _flag(context, "safety"):
        safety_over = _with_transforms(params_file, "safety_monitor", transforms)
        robot_frame = LaunchConfiguration("robot_frame").perform(context)
        if robot_frame:
            safety_over["robot_frame"] = robot_frame
        nodes["safety_monitor"] = ("safety_monitor_node", safety_over)
    if sample:
        cam_over = {}
        for key in ("source", "camera_namespace", "color_image_topic", "color_info_topic",
                    "depth_image_topic", "depth_info_topic"):
            text = LaunchConfiguration(key).perform(context)
            if text:
                cam_over[key] = text
        nodes["sample_camera"] = ("sample_camera_node", cam_over)
    actions = transport_actions(context) + mount_actions
    if _flag(context, "one_process"):
        actions += one_process_node(params_file, nodes, ros_args)
    else:
        actions += [Node(package=PACKAGE, executable=exe, name=name, output="screen",
                         emulate_tty=True, parameters=[params_file, over], **ros_args)
                    for name, (exe, over) in nodes.items()]
    if _flag(context, "rviz"):
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
                            arguments=["-d", os.path.join(share, "config",
                                                          "pose_perception.rviz")]))
    return actions


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=DEFAULTS.get(name, ""),
                                  description=text) for name, text in ARG_HELP.items()]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
