"""``pose-perception demo``: the pictures and summary from plain records (no ROS), and the whole
ROS 2 graph end to end on a few frames of the built-in sample (marked ``ros``)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pose_perception.apps import demo
from pose_perception.apps.demo_graph import _ImageKeeper
from pose_perception.apps.demo_pictures import (STATE_RGB, annotate, contact_sheet, top_view,
                                                up_coordinate, write_outputs)
from pose_perception.apps.demo_records import (DemoLog, FrameRec, PersonRec, SafetyRec,
                                               format_summary, stamp_ns, summarize)
from model_env import require_models

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------- ROS-free parts
def _person(tid, z, x=0.0):
    xyz = np.full((33, 3), np.nan)
    xyz[11] = (x + 0.18, 0.1, z)
    xyz[12] = (x - 0.18, 0.1, z)
    xyz[23] = (x + 0.12, 0.6, z)
    xyz[24] = (x - 0.12, 0.6, z)
    return PersonRec(tid, "blazepose33", np.zeros((33, 2)), np.ones(33), xyz,
                     np.array([x, 0.35, z]), True)


def _log(n=6):
    log = DemoLog("unit-test source", synthetic=True, camera_height_m=1.5)
    for i in range(n):
        t = 100.0 + 0.1 * i
        log.published.append((i, t))
        log.frames[stamp_ns(t)] = FrameRec(t, "cam", [_person(1, 3.0 - 0.4 * i)],
                                           True, t + 0.05, faces=1)
        d = 3.0 - 0.4 * i
        state = "CLEAR" if d > 2 else "WARNING" if d > 1 else "PROTECTIVE_STOP"
        log.safety.append(SafetyRec(t, t + 0.06, state, 1.0, d, 1, "left_shoulder", ""))
        log.images[stamp_ns(t)] = np.full((48, 64, 3), 40 * i, np.uint8)
    log.truth = np.stack([np.stack([3.0 - 0.4 * np.arange(n), np.zeros(n)], axis=1)],
                         axis=1)                                    # (n, 1, 2)
    return log


def test_summary_counts_frames_people_states_latency_and_truth_error():
    s = summarize(_log())
    assert s["frames_published"] == s["frames_processed"] == 6
    assert s["people_per_frame"] == 1.0 and s["max_people"] == 1 and s["track_ids"] == [1]
    assert s["safety_states_of_frames"] == {"CLEAR": 3, "WARNING": 2, "PROTECTIVE_STOP": 1}
    assert s["latency_ms"]["p50"] == pytest.approx(50.0, abs=0.5)
    assert s["closest_distance_min_m"] == pytest.approx(1.0)
    assert s["processed_rate_hz"] == pytest.approx(10.0, rel=0.01)
    assert s["sample_centroid_depth_error_m"]["median"] == pytest.approx(0.0, abs=1e-6)
    assert s["faces_per_frame"] == 1.0


def test_status_for_prefers_the_exact_stamp_then_an_earlier_one():
    log = _log(3)
    assert log.status_for(100.1).closest_distance == pytest.approx(2.6)
    assert log.status_for(100.15).stamp == pytest.approx(100.1)     # the last earlier one
    assert log.status_for(99.0) is None                             # nothing before


def test_write_outputs_makes_every_picture_and_a_summary(tmp_path):
    summary, files = write_outputs(_log(), tmp_path, n_frames=3)
    names = {str(f.relative_to(tmp_path)) for f in files}
    assert {"contact_sheet.png", "top_view.png", "skeletons_3d.png", "safety_timeline.png",
            "summary.json"} <= names
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 3
    import cv2
    sheet = cv2.imread(str(tmp_path / "contact_sheet.png"))
    assert sheet.shape[1] == 4 * (320 + 4) + 4                      # 4 columns of thumbnails
    for name in ("top_view.png", "skeletons_3d.png", "safety_timeline.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape[0] > 200 and img.std() > 5
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["frames_processed"] == 6 and "top_view.png" in on_disk["files"]
    text = format_summary(summary, tmp_path, files)
    assert "SYNTHETIC" in text and "6 processed" in text


def test_annotation_banner_shows_state_colour_and_synthetic_label():
    log = _log(1)
    rec = next(iter(log.frames.values()))
    img = np.zeros((480, 640, 3), np.uint8)
    out = annotate(img, rec, log.safety[0], 0, synthetic=True)
    assert out.shape == img.shape and not np.shares_memory(out, img)
    assert tuple(out[2, 630]) == STATE_RGB["CLEAR"]
    assert np.any(out[:24] == 255)                                  # white text
    assert tuple(annotate(img, rec, None, 0, False)[2, 630]) == (90, 90, 90)


def test_image_keeper_keeps_a_bounded_spread_of_images():
    k = _ImageKeeper(cap=8)
    for i in range(100):
        k.offer(i, lambda i=i: i)
    assert 4 <= len(k.images) <= 8
    keys = sorted(k.images)
    assert keys[0] == 0 and keys[-1] >= 64                          # spread over the run


def test_contact_sheet_grid_and_empty_input():
    imgs = [np.full((30, 40, 3), i * 20, np.uint8) for i in range(5)]
    sheet = contact_sheet(imgs, cols=2, thumb_w=40)
    assert sheet.shape == (3 * (30 + 4) + 4, 2 * (40 + 4) + 4, 3)
    with pytest.raises(ValueError):
        contact_sheet([])


def test_top_view_mapping_is_left_and_forward():
    tv = top_view(np.array([[1.0, 0.5, 2.0]]))     # 1 m right, 2 m ahead (optical frame)
    assert tv.tolist() == [[-1.0, 2.0]]
    assert up_coordinate(np.array([[0, 0.5, 2.0]]), 1.5)[0] == pytest.approx(1.0)


def test_build_setup_from_a_bag(tmp_path):
    """--bag reads frames with rosbags; the safety monitor measures in the camera frame."""
    from test_sample import _write_bag
    rng = np.random.default_rng(5)
    frames = [(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
               rng.integers(500, 3000, (24, 32), dtype=np.uint16)) for _ in range(3)]
    _write_bag(tmp_path / "b", frames, "mcap")
    args = demo.parser().parse_args(["--bag", str(tmp_path / "b"), "--rate", "5"])
    setup = demo.build_setup(args)
    assert len(setup.frames) == 3 and setup.rate_hz == 5 and not setup.synthetic
    assert setup.safety_params["robot_frame"] == ""
    with pytest.raises(ValueError, match="not a rosbag2"):
        demo.build_setup(demo.parser().parse_args(["--bag", str(tmp_path)]))


# ----------------------------------------------------------------------------- end to end
def _run_demo(args, timeout=240):
    from ros_env import isolated_domain_id, require_ros
    require_ros()
    require_models()
    env = dict(os.environ, ROS_DOMAIN_ID=isolated_domain_id())
    return subprocess.run([sys.executable, "-m", "pose_perception.cli", "demo"] + args,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.ros
@pytest.mark.models
def test_demo_end_to_end_on_the_builtin_sample(tmp_path):
    out = tmp_path / "demo_output"
    r = _run_demo(["--frames", "8", "--out", str(out), "--json"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["frames_published"] == 8
    assert s["frames_processed"] >= 5
    assert s["max_people"] == 1 and s["frames_with_people"] >= 4
    assert s["depth_used_frames"] == s["frames_processed"]
    assert s["latency_ms"]["p50"] > 0
    # the first 8 frames: the person walks 3.4 m -> 2.9 m, beyond the 2 m warning distance
    assert set(s["safety_states_of_frames"]) <= {"CLEAR", "UNKNOWN"}
    assert s["safety_states_of_frames"].get("CLEAR", 0) >= 3
    assert 2.3 < s["closest_distance_min_m"] < 3.6
    assert s["sample_centroid_depth_error_m"]["median"] < 0.25
    assert s["synthetic_depth"] and "SYNTHETIC" in r.stdout
    for name in ("contact_sheet.png", "top_view.png", "skeletons_3d.png",
                 "safety_timeline.png", "summary.json"):
        assert (out / name).is_file(), name
    assert len(list((out / "frames").glob("frame_*.png"))) >= 3


@pytest.mark.ros
@pytest.mark.models
def test_demo_on_silent_topics_reports_nothing_received(tmp_path):
    r = _run_demo(["--topics", "/no_camera_here", "--duration", "1", "--out",
                   str(tmp_path), "--json"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["frames_processed"] == 0
    assert any("nothing received on /no_camera_here/color/image_raw" in n for n in s["notes"])
    assert math.isfinite(s["wall_s"])
