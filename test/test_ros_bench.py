"""apps.bench_ros: the report numbers computed from raw measurements."""
import pytest

from ros_env import require_ros

pytestmark = pytest.mark.ros


def test_summary_of_rate_drops_latency_and_lag():
    require_ros()
    from pose_perception.apps.bench_ros import summarise
    r = summarise([10.0, 20.0, 30.0, 40.0, 100.0], [0, 1, 3, 1, 2], published=20, processed=5,
                  seconds=2.0)
    assert (r["published"], r["processed"], r["dropped"]) == (20, 5, 15)
    assert (r["input_rate_hz"], r["processed_rate_hz"], r["drop_fraction"]) == (10.0, 2.5, 0.75)
    assert r["latency_ms"] == {"p50": 30.0, "p95": 88.0, "max": 100.0}
    assert r["max_lag_frames"] == 3
    empty = summarise([], [], 0, 0, 1.0)
    assert empty["latency_ms"]["p50"] is None and empty["drop_fraction"] is None


def test_ratios_to_the_core_pipeline_cap_the_rate_at_the_camera_rate():
    """issue 19: bench-ros --core compares the processed rate with min(core rate, camera rate)
    (a node cannot process more frames than the camera sends) and the p95 latencies."""
    require_ros()
    from pose_perception.apps.bench_ros import compare_to_core
    report = {"camera_rate_hz": 30.0, "processed_rate_hz": 27.0,
              "latency_ms": {"p50": 40.0, "p95": 90.0, "max": 120.0}}
    compare_to_core(report, {"fps": 45.0, "latency_ms": {"p50": 22.0, "p95": 60.0}})
    assert report["rate_ratio"] == 0.9 and report["p95_ratio"] == 1.5
    compare_to_core(report, {"fps": 20.0, "latency_ms": {"p50": 40.0, "p95": 45.0}})
    assert report["rate_ratio"] == 1.35 and report["p95_ratio"] == 2.0
    report["processed_rate_hz"] = None
    compare_to_core(report, {"fps": 20.0, "latency_ms": {"p50": 40.0, "p95": 45.0}})
    assert report["rate_ratio"] is None
