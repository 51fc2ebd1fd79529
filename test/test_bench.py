"""``pose-perception bench`` / ``soak``: they run the real pipeline and report what they promise
(the JSON last line's keys and plausible values)."""
import json

import numpy as np
import pytest

from pose_perception.apps import bench, bench_common, soak
from model_env import require_models


@pytest.fixture(scope="module")
def models():
    require_models()


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert out, "nothing printed"
    return json.loads(out[-1]), "\n".join(out[:-1])


# --------------------------------------------------------------------------- helpers
def test_memory_and_hardware_helpers():
    assert 10 < bench_common.current_rss_mb() <= bench_common.peak_rss_mb() + 1.0
    hw = bench_common.hardware_info()
    assert hw["cores"] >= 1 and 1 <= hw["cores_usable"] <= hw["cores"]
    assert isinstance(hw["cpu"], str) and hw["cpu"]
    assert isinstance(hw["gpus"], list)
    assert bench_common.percentile([1, 2, 3, 4, 100], 50) == 3
    assert bench_common.parse_providers("cuda, cpu") == ["cuda", "cpu"]
    with pytest.raises(ValueError, match="unknown execution provider"):
        bench_common.parse_providers("cuda,warp-drive")


def test_argument_errors(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--frames", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--data", "x", "--people", "2"])
    assert bench.main(["--frames", "2", "--data", "/nonexistent/folder"]) == 1
    assert "not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------ bench
def test_bench_json_has_the_promised_keys(models, capsys):
    assert bench.main(["--frames", "5", "--warmup", "2", "--providers", "cpu", "--json"]) == 0
    r, table = _last_json(capsys)
    for key in ("fps", "latency_ms", "provider", "peak_rss_mb", "stages", "hardware", "command"):
        assert key in r
    assert r["frames"] == 5 and r["warmup_frames"] == 2
    assert r["fps"] > 0 and r["peak_rss_mb"] > 50
    lat = r["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert set(bench.STAGES) <= set(r["stages"])
    assert r["stages"]["total"] > 0 and r["stages"]["body"] > 0
    assert r["stages"]["total"] <= lat["p50"] * 1.5 + 1
    assert r["provider"] == "CPUExecutionProvider"
    assert r["hardware"]["cores"] >= 1 and "cpu" in r["hardware"]
    assert r["command"] == "pose-perception bench --frames 5 --warmup 2 --providers cpu --json"
    assert r["synthetic_depth"] is True and "SYNTHETIC" in r["source"]
    assert r["people_per_frame"] == 1.0 and r["faces_per_frame"] == 1.0
    assert "e2e" in table and "p95 ms" in table and "SYNTHETIC" in table
    # issue 19: the frame split into the time some model runs and the rest
    st = r["stages_mean"]
    assert 0 < st["inference"] <= lat["mean"] + 0.5
    assert st["non_inference"] >= 0 and st["inference"] + st["non_inference"] == \
        pytest.approx(lat["mean"], abs=0.05)
    assert 0 < r["non_inference_share"] < 1
    assert "not inference:" in table
    # which model the inference time went to: one body and one face a frame in the sample
    m = {v["model"]: v for v in r["models"]}
    assert m["pose_landmark_full"]["calls_per_frame"] >= 1.0
    assert m["pose_landmark_full"]["inputs_per_frame"] == pytest.approx(r["people_per_frame"])
    assert m["face_landmark"]["inputs_per_frame"] >= r["faces_per_frame"]
    assert all(v["ms_per_frame"] > 0 and v["ms_per_call"] > 0 for v in m.values())
    costs = [v["ms_per_frame"] for v in r["models"]]
    assert costs == sorted(costs, reverse=True)          # the costliest first
    assert "pose_landmark_full" in table and "ms/call" in table
    # each model's intra-op threads, as its session was opened (--threads not given)
    assert set(m) <= set(r["model_threads"])
    assert all(isinstance(n, int) and n >= 1 for n in r["model_threads"].values())
    assert "threads" in table


def test_bench_body_language_cost_in_one_run(models, capsys):
    """issue 15: the cost of gestures, pointing, posture and falls, on and off alternating in
    one run, as a frame-rate ratio."""
    assert bench.main(["--frames", "3", "--warmup", "1", "--providers", "cpu",
                       "--body-language-cost", "--json"]) == 0
    r, table = _last_json(capsys)
    c = r["body_language_cost"]
    assert len(c["fps_on"]) == len(c["fps_off"]) == 2 and c["ratio"] > 0
    assert "body language (gestures, pointing, posture, falls) on / off" in table
    assert r["stages_mean"]["body_language"] > 0
    with pytest.raises(SystemExit):
        bench.main(["--body-language-cost", "--no-body-language"])


def test_inference_clock_counts_overlapping_runs_once():
    """Two models running at once on two threads count once (the frame's wall time in which some
    model runs), so that 'frame - inference' is the time in which none runs."""
    import threading
    import time
    from pose_perception.core.worker import InferenceClock
    clock = InferenceClock()
    start = clock.total_ms()

    def run(seconds):
        with clock.running():
            time.sleep(seconds)
    t0 = time.perf_counter()
    a = threading.Thread(target=run, args=(0.10,))
    b = threading.Thread(target=run, args=(0.05,))
    a.start(), b.start()
    a.join(), b.join()
    wall = (time.perf_counter() - t0) * 1e3
    busy = clock.total_ms() - start
    assert 95 <= busy <= wall + 1          # about the longer run, not the 150 ms of both
    time.sleep(0.02)
    assert clock.total_ms() - start == pytest.approx(busy)   # nothing runs: no time added


def test_inference_clock_counts_each_model_on_its_own():
    """Per model: calls, inputs (batch sizes) and each run's own time, even where two models
    run at once (their own times then add up to more than the clock's)."""
    import threading
    import time
    from pose_perception.core.worker import InferenceClock
    clock = InferenceClock()
    start = clock.total_ms()

    def run(name, seconds, inputs):
        with clock.running(name, inputs):
            time.sleep(seconds)
    a = threading.Thread(target=run, args=("body", 0.10, 2))
    b = threading.Thread(target=run, args=("face", 0.05, 1))
    a.start(), b.start()
    a.join(), b.join()
    run("face", 0.02, 3)
    with clock.running():                 # an unnamed run counts only in the total
        time.sleep(0.01)
    before = clock.by_model()
    assert set(before) == {"body", "face"}
    assert (before["body"].calls, before["body"].inputs) == (1, 2)
    assert (before["face"].calls, before["face"].inputs) == (2, 4)
    assert 95 <= before["body"].ms <= 150 and 65 <= before["face"].ms <= 120
    assert before["body"].ms + before["face"].ms > clock.total_ms() - start - 12
    run("face", 0.01, 1)
    after = clock.by_model()["face"].since(before["face"])
    assert (after.calls, after.inputs) == (1, 1) and 9 <= after.ms <= 60
    assert clock.by_model()["body"].since(None).calls == 1


def test_bench_three_people_and_no_face(models, capsys):
    assert bench.main(["--frames", "4", "--warmup", "2", "--people", "3", "--no-face",
                       "--providers", "cpu", "--threads", "1", "--json"]) == 0
    r, _ = _last_json(capsys)
    assert r["people_per_frame"] >= 2.75
    assert set(r["model_threads"].values()) == {1}          # --threads 1: every model
    assert r["face"] is False and r["stages"]["face"] == 0.0 and r["faces_per_frame"] == 0.0
    assert r["threads"] == 1


def test_bench_on_recorded_realsense_frames(models, shared_data, capsys):
    d = shared_data / "rgbd_dev/realsense_two_people"
    assert bench.main(["--frames", "4", "--warmup", "2", "--data", str(d), "--providers", "cpu",
                       "--json"]) == 0
    r, _ = _last_json(capsys)
    assert r["source"] == "realsense_two_people" and r["synthetic_depth"] is False
    assert r["people_per_frame"] >= 1.5
    assert r["stages"]["lift"] > 0


# ------------------------------------------------------------------------------- soak
def test_soak_reports_growth_and_drift_with_a_bag_loop_reset(models, capsys):
    code = soak.main_soak(["--frames", "60", "--warmup", "6", "--window", "10",
                           "--reset-every", "1", "--providers", "cpu", "--json"])
    assert code == 0
    r, text = _last_json(capsys)
    for key in ("rss_growth_mb", "p95_drift_pct", "frames", "p95_first_ms", "p95_last_ms"):
        assert key in r
    assert r["frames"] == 60 and r["window_frames"] == 10 and r["loop_length"] == 48
    assert r["rss_growth_second_half_mb"] is not None
    assert r["tracking_resets"] == 1            # stamps jumped back once (frame 48)
    assert r["frames_with_warnings"] >= 1       # ... and the pipeline said so
    assert r["p95_first_ms"] > 0 and r["p95_last_ms"] > 0
    w = np.asarray(r["p95_windows_ms"])            # 54 measured frames: 5 windows of ~10
    assert len(w) == 5 and w[0] == r["p95_first_ms"] and w[-1] == r["p95_last_ms"]
    slope, start = np.polyfit(np.arange(5), w, 1)      # the trend line through the windows
    assert r["p95_drift_pct"] == pytest.approx(slope * 4 / start * 100, abs=0.5)
    assert r["rss_end_mb"] - r["rss_after_warmup_mb"] == pytest.approx(r["rss_growth_mb"],
                                                                       abs=0.2)
    assert "growth" in text and "drift" in text


def test_soak_needs_two_windows(capsys):
    assert soak.main_soak(["--frames", "10", "--warmup", "2", "--window", "5"]) == 1
    assert "2 windows" in capsys.readouterr().err
