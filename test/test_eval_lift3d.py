"""`pose-perception eval lift3d`: Human3.6M ground truth, rendered depth, lifting accuracy.

The ground-truth-2D run needs only the development data; the detected-2D run also needs the
provisioned models (both skip cleanly without them)."""
import json

import numpy as np
import pytest

from pose_perception.core.camera import CameraModel
from pose_perception.apps.eval_lift3d import evaluate, main, render_depth
from model_env import require_models


def test_render_depth_is_the_capsule_surface():
    cam = CameraModel(200, 200, [[200.0, 0, 99.5], [0, 200.0, 99.5], [0, 0, 1]], [], "none")
    a, b = np.array([-0.3, 0.0, 2.0]), np.array([0.3, 0.0, 2.0])
    d = render_depth(cam, [(a, b, 0.1)], wall_z=4.0)
    assert d[100, 100] == pytest.approx(1.9, abs=5e-4)       # front of the capsule
    assert d[0, 0] == pytest.approx(4.0)                      # the wall
    # 5 cm off the axis (5 px at 2 m): sqrt(r^2 - 0.05^2) in front of the axis
    assert d[105, 100] == pytest.approx(2.0 - np.sqrt(0.01 - 0.05 ** 2), abs=3e-3)
    assert np.isnan(render_depth(cam, [(a, b, 0.1)])[0, 0])   # no wall: nothing seen


def test_ground_truth_2d_targets(shared_data, capsys):
    data = shared_data / "h36m_dev" / "h36m_3d.json"
    assert main(["--data", str(data), "--gt-only", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    gt = res["gt2d"]
    assert gt["valid_fraction"] == 1.0
    assert gt["mpjpe_mm"] < 30.0
    assert set(gt["per_joint_mm"]) >= {"pelvis", "right_wrist", "head"}
    assert "detected2d" not in res
    # an ideal sensor and a wall close behind the person: still within target
    res = evaluate(data, detected=False, noise_a=-1, wall_gap_m=0.3)
    assert res["gt2d"]["valid_fraction"] == 1.0 and res["gt2d"]["mpjpe_mm"] < 30.0


@pytest.mark.models
def test_detected_2d(shared_data):
    require_models()
    res = evaluate(shared_data / "h36m_dev" / "h36m_3d.json", detected=True)
    det = res["detected2d"]
    assert all(f["detected"] for f in res["frames"])
    assert det["valid_fraction"] >= 0.95
    # dominated by where BlazePose's points are versus H36M's joints (the same 2D at the true
    # depth scores true_depth_mpjpe_mm); lifting may add little to that
    assert det["mpjpe_mm"] < 110.0
    assert det["mpjpe_mm"] < det["true_depth_mpjpe_mm"] + 35.0
    assert res["gt2d"]["mpjpe_mm"] < 30.0


def test_bad_input(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing.json"), "--gt-only"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"joint_names": ["a"], "frames": []}))
    assert main(["--data", str(bad), "--gt-only"]) == 2
    assert "unexpected joint order" in capsys.readouterr().err
