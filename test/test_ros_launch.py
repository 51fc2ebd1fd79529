"""launch/pose_perception.launch.py and config/pose_perception.rviz: the launch file compiles
and, where ros2 launch is installed, builds the expected nodes with the right parameters; the
RViz config shows the package's topics."""
import importlib.util
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "pose_perception.launch.py"


def test_launch_file_compiles_and_rviz_config_shows_the_topics():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")
    rviz = yaml.safe_load((REPO / "config" / "pose_perception.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert topics == {"/people/markers", "/safety/markers", "/people/debug_image"}
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"]


def _load_launch(path=LAUNCH):
    try:
        import launch  # noqa: F401
        import launch_ros.actions  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"ros2 launch not installed ({exc}); checked by hand with `ros2 launch`")
    spec = importlib.util.spec_from_file_location("pp_launch", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _context(mod, **arguments):
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    ld = mod.generate_launch_description()
    ctx = LaunchContext()
    for e in ld.entities:
        if isinstance(e, DeclareLaunchArgument):
            ctx.launch_configurations[e.name] = arguments.get(e.name, e.default_value[0].text
                                                              if e.default_value else "")
    (fn,) = [e for e in ld.entities if isinstance(e, OpaqueFunction)]
    return ctx, fn


def _actions(mod, **arguments):
    ctx, fn = _context(mod, **arguments)
    return fn.execute(ctx)


def _nodes(mod, **arguments):
    from launch_ros.actions import Node
    return [a for a in _actions(mod, **arguments) if isinstance(a, Node)]


def test_launch_gives_its_nodes_the_large_data_transport(monkeypatch):
    """issue 19: images on one machine need Fast DDS's LARGE_DATA transports (bench-ros set it,
    the launch file did not); an environment that sets it already wins; 'keep' sets nothing."""
    mod = _load_launch()
    from launch.actions import SetEnvironmentVariable
    monkeypatch.delenv("FASTDDS_BUILTIN_TRANSPORTS", raising=False)

    def transport(**arguments):
        ctx, fn = _context(mod, **arguments)
        sets = [a for a in fn.execute(ctx) if isinstance(a, SetEnvironmentVariable)]
        return ["".join(s.perform(ctx) for s in a.value) for a in sets]
    assert transport() == ["LARGE_DATA"]
    assert transport(dds_transport="default") == ["DEFAULT"]
    assert transport(dds_transport="keep") == []
    with pytest.raises(ValueError, match="dds_transport"):
        transport(dds_transport="udp")
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", "SHM")
    assert transport() == []


def test_launch_builds_nodes_from_arguments():
    mod = _load_launch()
    nodes = _nodes(mod)
    assert [n.node_executable for n in nodes] == ["pose_node"]
    nodes = _nodes(mod, safety="true", sample_camera="true", use_gpu="false",
                   camera_namespace="/camera/camera", robot_frame="base_footprint")
    assert [n.node_executable for n in nodes] == ["pose_node", "safety_monitor_node",
                                                  "sample_camera_node"]
    ctx, _ = _context(mod, use_gpu="false", camera_namespace="/camera/camera",
                      sync_slop_s="0.2")
    assert mod.pose_node_overrides(ctx) == {"use_gpu": False, "sync_slop_s": 0.2,
                                            "camera_namespace": "/camera/camera"}
    with pytest.raises(ValueError, match="true or false"):
        _nodes(mod, use_gpu="maybe")


def _ros_args_blocks(node) -> int:
    """How many '--ros-args' the node's command line template holds."""
    from launch.substitutions import TextSubstitution
    return sum(1 for part in node.cmd for sub in part
               if isinstance(sub, TextSubstitution) and sub.text == "--ros-args")


def _text(value):
    """A normalised launch parameter value (substitution lists, tuples of them) as plain data."""
    if isinstance(value, tuple):
        return [_text(v) for v in value]
    if isinstance(value, list) and all(hasattr(s, "text") for s in value):
        return yaml.safe_load("".join(s.text for s in value))    # launch_ros YAML-dumps text
    return value


def _params(node) -> dict:
    out = {}
    for p in node._Node__parameters:                   # normalised: files and dicts
        if isinstance(p, dict):
            out.update({"".join(s.text for s in k): _text(v) for k, v in p.items()})
    return out


def test_one_ros_args_block_unless_a_log_level_is_asked_for():
    """issue 17, defect 7: launch_ros opens its own --ros-args block; ours made a second one."""
    mod = _load_launch()
    nodes = _nodes(mod, safety="true", sample_camera="true")
    assert all(_ros_args_blocks(n) == 1 for n in nodes)
    nodes = _nodes(mod, log_level="debug")
    assert _ros_args_blocks(nodes[0]) == 2


def test_camera_mount_becomes_a_static_transform(monkeypatch):
    """issue 17, defect 4: camera_mount (and, by default, the built-in sample's mount) reaches the
    nodes as a static_transforms entry without tf2_ros, as a static_transform_publisher with it."""
    from pose_perception.core.camera_mount import static_transform_spec
    from pose_perception.sources.sample import SAMPLE_CAMERA_MOUNT, SAMPLE_FRAME_ID
    mod = _load_launch()
    monkeypatch.setattr(mod, "_has_package", lambda name: False)
    nodes = _nodes(mod, safety="true", sample_camera="true")
    safety = [n for n in nodes if n.node_executable == "safety_monitor_node"][0]
    want = static_transform_spec("base_link", SAMPLE_FRAME_ID, SAMPLE_CAMERA_MOUNT)
    assert _params(safety)["static_transforms"] == [want]
    nodes = _nodes(mod, safety="true", robot_frame="base_footprint", camera_mount="0 0 1 0 0.2 0",
                   camera_frame="cam_optical")
    safety = [n for n in nodes if n.node_executable == "safety_monitor_node"][0]
    assert _params(safety)["static_transforms"] == [
        static_transform_spec("base_footprint", "cam_optical", "0 0 1 0 0.2 0")]
    assert "static_transforms" not in _params(_nodes(mod, safety="true")[1])   # no mount: none
    monkeypatch.setattr(mod, "_has_package", lambda name: name == "tf2_ros")
    nodes = _nodes(mod, safety="true", camera_mount="0 0 1 0 0 0")
    assert [n.node_executable for n in nodes] == ["static_transform_publisher", "pose_node",
                                                  "safety_monitor_node"]
    assert "static_transforms" not in _params(nodes[2])
    with pytest.raises(ValueError, match="x y z roll pitch yaw"):
        _nodes(mod, safety="true", camera_mount="0 0 1")


def test_one_process_starts_one_executable_with_per_node_parameters():
    """issue 19: one_process:=true runs the nodes in one pose_perception_nodes process, without
    a name (it would rename every node in it) and with each node's overrides in a parameter
    file keyed by node name."""
    mod = _load_launch()
    nodes = _nodes(mod, one_process="true", safety="true", sample_camera="true",
                   use_gpu="false", robot_frame="base_footprint")
    assert [n.node_executable for n in nodes] == ["pose_perception_nodes"]
    node = nodes[0]
    assert node._Node__node_name is None
    paths = ["".join(getattr(sub, "text", sub) for sub in p.param_file)
             for p in node._Node__parameters
             if hasattr(p, "param_file")]
    per_node = [yaml.safe_load(Path(f).read_text()) for f in paths
                if "pose_perception_nodes_" in f]
    assert len(per_node) == 1
    assert per_node[0]["/**/pose_node"]["ros__parameters"]["use_gpu"] is False
    assert per_node[0]["/**/safety_monitor"]["ros__parameters"]["robot_frame"] == \
        "base_footprint"
    args = ["".join(getattr(s, "text", s) for s in a) for a in node._Node__arguments]
    assert args == ["--safety", "--sample-camera"]
    # the temporary parameter file goes when the launch shuts down
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnShutdown
    from launch.events import Shutdown
    from launch_ros.actions import Node
    ctx, fn = _context(mod, one_process="true")
    actions = fn.execute(ctx)
    (node,) = [a for a in actions if isinstance(a, Node)]
    (path,) = ["".join(getattr(sub, "text", sub) for sub in p.param_file)
               for p in node._Node__parameters
               if hasattr(p, "param_file") and "pose_perception_nodes_" in
               "".join(getattr(sub, "text", sub) for sub in p.param_file)]
    (handler,) = [a.event_handler for a in actions if isinstance(a, RegisterEventHandler)
                  and isinstance(a.event_handler, OnShutdown)]
    assert Path(path).is_file()
    handler.handle(Shutdown(), ctx)
    assert not Path(path).exists()
