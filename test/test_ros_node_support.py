"""ros.node_support: the parameters, QoS and problem log every node shares."""
import pytest

from ros_env import require_ros

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module", autouse=True)
def _ros():
    require_ros()


def test_camera_parameters_are_one_set_read_by_both_camera_nodes():
    from pose_perception.ros.lifting_node import node_param_specs as lifting_specs
    from pose_perception.ros.node_support import camera_param_specs
    from pose_perception.ros.pose_node import node_param_specs as pose_specs

    def same(s):
        return (s.name, s.default, s.kind, s.description, s.choices, s.check is None)

    shared = camera_param_specs()
    for specs in (pose_specs(), lifting_specs()):
        by_name = {s.name: s for s in specs}
        assert len(by_name) == len(specs)                 # no name declared twice
        assert all(same(by_name[n]) == same(s) for n, s in shared.items())


def test_qos_profiles():
    from rclpy.qos import QoSReliabilityPolicy as R
    from pose_perception.ros.node_support import camera_info_qos, output_qos, sensor_qos
    assert sensor_qos("best_effort", 7).reliability == R.BEST_EFFORT
    assert sensor_qos("best_effort", 7).depth == 7
    assert sensor_qos("reliable", 1).reliability == R.RELIABLE
    assert camera_info_qos("best_effort").reliability == R.BEST_EFFORT
    assert output_qos().reliability == R.RELIABLE and output_qos(depth=1).depth == 1


def test_problems_differing_only_in_numbers_share_one_rate_limit():
    from pose_perception.ros.node_support import problem_key, rate_limited_log

    class Logger:
        lines = []

        def warning(self, text):
            self.lines.append(("warn", text))

        def error(self, text):
            self.lines.append(("error", text))

    log = rate_limited_log(Logger(), period_s=60.0)
    for stamp in (1.5, 2.25, 3e9):
        text = f"image stamped {stamp} s is late"
        log(problem_key("time", text), "warn", text)
    log(problem_key("input", "bad image"), "error", "bad image")
    assert Logger.lines == [("warn", "image stamped 1.5 s is late"), ("error", "bad image")]
    assert problem_key("time", "a 12 b") == problem_key("time", "a 3.5e-3 b") != \
        problem_key("input", "a 12 b")
