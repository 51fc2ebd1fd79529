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
