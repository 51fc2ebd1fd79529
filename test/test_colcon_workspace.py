"""The package builds with colcon from a workspace's src/ (as users of an apt ROS install do),
not only in place: the tracked files copied to <ws>/src/pose_perception, `colcon build` in <ws>."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("POSE_PERCEPTION_VENV", REPO / ".venv"))

pytestmark = pytest.mark.slow


def test_colcon_build_from_workspace_src(tmp_path):
    if not (VENV / ".pose_perception" / "colcon").exists():
        pytest.skip("no environment made by scripts/setup_env.sh (run `make setup`)")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to know the tracked files")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    src = tmp_path / "ws" / "src" / "pose_perception"
    for f in filter(None, files):
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    ws = tmp_path / "ws"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "colcon_build.sh"), str(ws / "src"),
                           str(ws)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    share = ws / "install" / "pose_perception" / "share" / "pose_perception"
    assert (share / "package.xml").exists()
    assert (share / "launch" / "pose_perception.launch.py").exists()
    assert (share / "config" / "pose_perception.yaml").exists()
    assert (ws / "install" / "pose_perception" / "lib" / "pose_perception" / "pose_node").exists()
    site = next((ws / "install" / "pose_perception" / "lib").glob("python3*/site-packages"))
    assert (site / "pose_perception" / "msg" / "_skeleton_array.py").exists()
    assert (site / "pose_perception" / "core" / "perception.py").exists()
    # the built messages import from that install alone (the source tree is not on the path)
    hide = (str(REPO), str(REPO / "install"))        # the checkout's own source and install
    code = ("import sys; sys.path = [p for p in sys.path if p != %r and not p.startswith(%r)];"
            "sys.path.insert(0, %r); import pose_perception.msg as m; print(m.__file__)"
            % (hide + (str(site),)))
    env = dict(os.environ, PYTHONPATH="", PYTHONNOUSERSITE="1")
    out = subprocess.run([str(VENV / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(site) in out.stdout
