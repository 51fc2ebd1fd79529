"""``pose-perception nodes`` / scripts/pose_perception_nodes (issue 19): the sample camera,
pose_node and the safety monitor in one process, each with its own parameters from one
parameter file keyed by node name; results flow; Ctrl-C exits 0."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from model_env import require_models

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]


def test_options_and_ros_arguments_are_split():
    from pose_perception.ros.one_process import split_arguments
    assert split_arguments(["--safety", "--ros-args", "-p", "a:=1"]) == (
        ["--safety"], ["--ros-args", "-p", "a:=1"])
    assert split_arguments([]) == ([], [])
    with pytest.raises(ValueError, match="--lifting"):
        split_arguments(["--lifting"])


def test_camera_pose_node_and_safety_monitor_in_one_process(ros, tmp_path):
    require_models()
    from pose_perception.msg import SafetyStatus, SkeletonArray
    params = {
        "/**/pose_node": {"ros__parameters": {"use_gpu": False, "enable_face": False}},
        "/**/safety_monitor": {"ros__parameters": {"static_transforms": [
            "base_link camera_color_optical_frame 0 0 1 -1.5708 0 -1.5708"]}},
        "/**/sample_camera": {"ros__parameters": {"rate_hz": 10.0}},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "pose_perception_nodes"),
                             "--safety", "--sample-camera", "--ros-args", "--params-file",
                             str(path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    node = ros.create_node("one_process_listener")
    got = {"skeletons": [], "status": []}
    node.create_subscription(SkeletonArray, "people/skeletons", got["skeletons"].append, 10)
    node.create_subscription(SafetyStatus, "safety/status", got["status"].append, 10)
    try:
        deadline = time.monotonic() + 90.0
        while time.monotonic() < deadline and proc.poll() is None and not (
                len(got["skeletons"]) >= 3 and got["status"]):
            ros.spin_once(node, timeout_sec=0.1)
        assert proc.poll() is None, proc.stdout.read()
        assert len(got["skeletons"]) >= 3 and got["status"], "no results from the one process"
        assert any(s.skeletons for s in got["skeletons"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        node.destroy_node()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    for name in ("pose_node", "safety_monitor", "sample_camera"):
        assert name in out                           # each node logged its start


def test_bad_parameters_of_one_node_are_one_error_line(ros, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"/**/safety_monitor": {"ros__parameters": {
        "rate_hzz": 5.0}}}))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "pose_perception.cli", "nodes", "--safety",
                          "--ros-args", "--params-file", str(path), "-p", "use_gpu:=false"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "rate_hzz" in out.stderr and "Traceback" not in out.stderr
