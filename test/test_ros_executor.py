"""The nodes' executor choice (ros.run.executor_kind): SingleThreadedExecutor, or rclpy's
EventsExecutor where it exists and POSE_PERCEPTION_EXECUTOR=events asks for it."""
import pytest

rclpy = pytest.importorskip("rclpy")

from pose_perception.ros import run  # noqa: E402


def _has_events() -> bool:
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401
    except ImportError:
        return False
    return True


def test_default_is_the_single_threaded_executor():
    assert run.executor_kind({}) == "single"
    assert run.executor_kind({run.EXECUTOR_ENV: ""}) == "single"


def test_environment_overrides_and_bad_values_are_refused():
    assert run.executor_kind({run.EXECUTOR_ENV: "single"}) == "single"
    assert run.executor_kind({run.EXECUTOR_ENV: " Single "}) == "single"
    assert run.executor_kind({run.EXECUTOR_ENV: "events"}) == \
        ("events" if _has_events() else "single")
    with pytest.raises(ValueError, match="expected one of events, single"):
        run.executor_kind({run.EXECUTOR_ENV: "multi"})


def test_events_asked_without_it_falls_back(monkeypatch, caplog):
    monkeypatch.setattr(run, "_events_executor", lambda: None)
    with caplog.at_level("WARNING"):
        assert run.executor_kind({run.EXECUTOR_ENV: "events"}) == "single"
    assert "no EventsExecutor" in caplog.text


@pytest.mark.parametrize("kind", ["single", "events"])
def test_each_executor_delivers_messages(kind):
    """A message published on one node reaches a subscription on another, on the executor
    ``make_executor`` builds (the way run_node spins)."""
    if kind == "events" and not _has_events():
        pytest.skip("this rclpy has no EventsExecutor")
    from std_msgs.msg import String
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        pub_node = rclpy.create_node("executor_test_pub", context=context)
        sub_node = rclpy.create_node("executor_test_sub", context=context)
        got = []
        sub_node.create_subscription(String, "executor_test", lambda m: got.append(m.data), 10)
        pub = pub_node.create_publisher(String, "executor_test", 10)
        ex = run.make_executor(context, kind)
        ex.add_node(pub_node)
        ex.add_node(sub_node)
        for k in range(100):
            pub.publish(String(data=f"m{k}"))
            ex.spin_once(timeout_sec=0.05)
            if got:
                break
        ex.shutdown(timeout_sec=0)
        pub_node.destroy_node()
        sub_node.destroy_node()
        assert got and got[0].startswith("m")
    finally:
        rclpy.try_shutdown(context=context)
