"""flake8 over the package, the tests, the launch file and the executables, with the settings in
setup.cfg (line length 100), as ROS 2 packages' ament_flake8 tests do."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("pose_node", "lifting_node", "safety_monitor_node", "sample_camera_node",
           "pose-perception")


def test_flake8_finds_nothing():
    targets = ["pose_perception", "test", "launch"] + [f"scripts/{s}" for s in SCRIPTS]
    run = subprocess.run([sys.executable, "-m", "flake8", *targets], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert "No module named flake8" not in run.stderr, \
        "flake8 is missing: `make setup` installs it (requirements/test.txt)"
    assert run.returncode == 0, run.stdout + run.stderr
