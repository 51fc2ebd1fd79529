"""The repository is one ROS 2 package with the documented layout, and the core imports no ROS."""
import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_package_xml_declares_real_dependencies():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "pose_perception"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "visualization_msgs",
                "diagnostic_msgs", "builtin_interfaces", "cv_bridge", "message_filters",
                "tf2_ros", "python3-numpy", "python3-opencv", "python3-transforms3d",
                "rosidl_default_generators", "ament_cmake_python"):
        assert dep in deps, dep
    assert root.find("export/build_type").text == "ament_cmake"
    # rosdep stops at the first key it does not know: only pip keys that ros/rosdistro's
    # rosdep/python.yaml defines (checked 2026-11; 'python3-onnx-pip' is not one of them)
    pip_keys = {d for d in deps if d.endswith("-pip")}
    assert pip_keys <= {"python3-onnxruntime-pip", "python3-onnxruntime-gpu-pip",
                        "python3-rosbags-pip"}, pip_keys


def test_every_message_listed_in_cmake_exists():
    cmake = (REPO / "CMakeLists.txt").read_text()
    msgs = sorted(p.name for p in (REPO / "msg").glob("*.msg"))
    assert {"Keypoint.msg", "Skeleton.msg", "SkeletonArray.msg", "FaceLandmarks.msg",
            "FaceLandmarksArray.msg", "SafetyStatus.msg"} <= set(msgs)
    for m in msgs:
        assert f'"msg/{m}"' in cmake, m


def test_message_fields_are_commented():
    """Every field has a comment on its line or heads a block (no blank line) under a comment."""
    for path in (REPO / "msg").glob("*.msg"):
        under_comment = False
        for line in path.read_text().splitlines():
            s = line.strip()
            if not s:
                under_comment = False
            elif s.startswith("#"):
                under_comment = True
            elif "=" not in s.split("#")[0]:
                assert "#" in s or under_comment, f"{path.name}: uncommented field '{s}'"


def test_core_never_imports_ros():
    banned = ("rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "visualization_msgs",
              "diagnostic_msgs", "message_filters", "cv_bridge", "tf2_ros", "builtin_interfaces")
    for path in (REPO / "pose_perception" / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in banned, f"{path} imports {n}"


def test_core_imports_neither_the_ros_layer_nor_apps_nor_sources():
    """The layers: ``core`` at the bottom; ``sources`` and ``ros`` use it; ``apps`` use all."""
    pkg_root = REPO / "pose_perception"
    for path in (pkg_root / "core").rglob("*.py"):
        package = path.relative_to(REPO).parent.parts   # ('pose_perception', 'core', ...)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = list(package[:len(package) - node.level + 1]) if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            else:
                continue
            assert not module.startswith(("pose_perception.ros", "pose_perception.apps",
                                          "pose_perception.sources")), f"{path} imports {module}"


def test_every_command_resolves_to_a_function():
    """Each ``pose-perception`` command's module imports and has its function (ROS ones where
    rclpy is installed)."""
    from pose_perception import cli
    for table in (cli.COMMANDS, cli.EVAL_COMMANDS):
        for name, (module, func, _) in table.items():
            if module.startswith("pose_perception.ros."):
                pytest.importorskip("rclpy")
            assert callable(cli._resolve(table, name)), name


_MAPS_PROBE = """
import sys
import pose_perception
loaded = [l for l in open('/proc/self/maps') if 'lib' + 'pose_perception__' in l]
print(len(loaded), pose_perception._message_libraries_loaded)
if len(sys.argv) > 1:
    import pose_perception.msg  # noqa: F401
    loaded = [l for l in open('/proc/self/maps') if 'lib' + 'pose_perception__' in l]
    print(len(loaded), pose_perception._message_libraries_loaded)
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
def test_importing_the_package_loads_no_message_library():
    """`import pose_perception` (core users, apps) dlopens nothing; importing the messages does."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", _MAPS_PROBE], cwd=root, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "False"]
    run = subprocess.run([sys.executable, "-c", _MAPS_PROBE, "msg"], cwd=root,
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        pytest.skip(f"the built pose_perception messages are unavailable: {run.stderr[-300:]}")
    before, after = run.stdout.splitlines()
    assert before.split() == ["0", "False"]
    assert after.split()[1] == "True"
