"""pose_node's colour/depth pairing with the package's synchroniser and, where installed, the real
message_filters (issue 17, defects 5 and 6):

- pairs with identical stamps sent one by one after idle gaps are processed with their depth,
  each once (before: a colour image arriving first after a pause went alone in 2D and its pair
  was then skipped as a duplicate), and the synchroniser's wait is in /diagnostics;
- an older pair handed over after a newer one (message_filters does that) is dropped silently
  and counted; only the camera's own stamps going backwards is warned about.

Real topics, a fake pipeline (test_ros_pose_node.FakePerception). For the real message_filters
(apt) put its Python module on PYTHONPATH; without it those cases skip.
"""
import pytest

from test_ros_pose_node import colour_msg, depth_msg, info_msg

pytestmark = pytest.mark.ros


@pytest.fixture(params=["fallback", "message_filters"])
def synchroniser(request, monkeypatch):
    """Make pose_node use the package's synchroniser or the real message_filters."""
    from pose_perception.ros import compat
    if request.param == "fallback":
        monkeypatch.setattr(compat, "Subscriber", compat.FallbackSubscriber)
        monkeypatch.setattr(compat, "ApproximateTimeSynchronizer",
                            compat.FallbackApproximateTimeSynchronizer)
    else:
        mf = pytest.importorskip("message_filters", reason="message_filters not installed")
        monkeypatch.setattr(compat, "Subscriber", mf.Subscriber)
        monkeypatch.setattr(compat, "ApproximateTimeSynchronizer", mf.ApproximateTimeSynchronizer)
    return request.param


def _stamps(h):
    return [s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in h.skeletons]


def _values(h):
    return h.last_diag_values()[1] if h.diag else {}


@pytest.mark.parametrize("colour_first", [True, False])
@pytest.mark.parametrize("slop", [0.05, 0.0])
def test_identical_stamp_pairs_after_idle_gaps_are_processed_with_depth(
        harness, synchroniser, colour_first, slop):
    h = harness({"depth_wait_s": 0.2, "sync_slop_s": slop})
    h.pub["info"].publish(info_msg())
    h.pub["dinfo"].publish(info_msg())
    h.spin_for(0.1)
    sent = []
    for i in range(5):
        h.spin_for(0.4)                                 # idle, longer than depth_wait_s
        t = 200.0 + i
        first, second = (("color", colour_msg(t)), ("depth", depth_msg(t)))[::(
            1 if colour_first else -1)]
        h.pub[first[0]].publish(first[1])
        h.spin_for(0.05)                                # the other image comes a moment later
        h.pub[second[0]].publish(second[1])
        sent.append(t)
        h.spin_until(lambda: len(h.skeletons) == i + 1, f"pair {t} processed")
        assert h.skeletons[-1].depth_used, f"pair {t} went out without its depth"
    h.spin_for(0.5)
    assert _stamps(h) == pytest.approx(sent)            # each pair once, nothing alone
    assert [c["stamp"] for c in h.fake.calls] == pytest.approx(sent)
    assert all(c["depth"] is not None for c in h.fake.calls)
    h.spin_until(lambda: int(_values(h).get("synchronised pairs", 0)) == len(sent),
                 "synchronised pairs counter")
    v = _values(h)
    p50, p95, worst = (float(x) for x in v["sync wait latency p50/p95/max [ms]"].split(" / "))
    assert 0.0 <= p50 <= p95 <= worst
    assert "not synchronised" not in h.diag[-1].message


def test_an_older_pair_after_a_newer_one_is_dropped_silently(harness, synchroniser):
    h = harness({"sync_slop_s": 0.05})
    h.pub["info"].publish(info_msg())
    h.pub["dinfo"].publish(info_msg())
    h.spin_for(0.1)
    # colour 300.00 and 300.04; the depth of 300.04 first: pair 300.04; then the late depth of
    # 300.00 pairs (message_filters keeps unmatched messages) with the older colour image
    h.pub["color"].publish(colour_msg(300.0))
    h.pub["color"].publish(colour_msg(300.04))
    h.spin_for(0.05)
    h.pub["depth"].publish(depth_msg(300.04))
    h.spin_until(lambda: h.skeletons, "the newer pair")
    h.pub["depth"].publish(depth_msg(300.0))
    h.spin_for(0.3)
    h.pub["color"].publish(colour_msg(300.08))
    h.pub["depth"].publish(depth_msg(300.08))
    h.spin_until(lambda: len(h.skeletons) == 2, "the next pair")
    assert _stamps(h) == pytest.approx([300.04, 300.08])
    h.spin_until(lambda: int(_values(h).get("processed", 0)) == 2, "diagnostics")
    stale = int(_values(h).get("stale pairs", 0))
    # message_filters handed the older pair over (dropped, counted); the fallback never does
    assert stale == (1 if synchroniser == "message_filters" else 0)
    assert all("went backwards" not in st.message and "out-of-order" not in st.message
               for st in h.diag), [st.message for st in h.diag if st.level]
    # the camera's own stamps going backwards is what is warned about
    h.pub["depth"].publish(depth_msg(300.06))
    h.pub["color"].publish(colour_msg(300.06))
    h.spin_until(lambda: h.diag and "image stamps went backwards: colour image stamped "
                 "300.060000 arrived after one stamped 300.080000" in h.diag[-1].message,
                 "camera order warning")
    assert len(h.skeletons) == 2
