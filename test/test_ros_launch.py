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


def _load_launch():
    try:
        import launch  # noqa: F401
        import launch_ros.actions  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"ros2 launch not installed ({exc}); checked by hand with `ros2 launch`")
    spec = importlib.util.spec_from_file_location("pp_launch", LAUNCH)
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


def _nodes(mod, **arguments):
    ctx, fn = _context(mod, **arguments)
    return fn.execute(ctx)


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
