"""The safety monitor behind pose_node under input faults: pose_node (fake pipeline: a person
whose 3D comes from the depth image) -> SkeletonArray -> safety_monitor, all over real topics.

For every fault (no CameraInfo, unusable CameraInfo, all-invalid depth with and without anyone
detected, NaN depth on the person, undecodable images, duplicated stamps, stale perception,
stamps going backwards, a missing TF),
the status is never CLEAR once the fault could have reached the monitor, and it says why
(UNKNOWN with a reason); no CLEAR is ever computed from a faulty frame. Between faults, good
frames bring CLEAR back (so the chain is alive and the checks can fail).
"""
import time

import numpy as np
import pytest

from test_ros_pose_node import H, W, colour_msg, depth_msg, info_msg
from test_robustness_node import depth_image

pytestmark = pytest.mark.ros

STALE_S = 0.5
# a fault must show in the status within the stale timeout plus processing and publishing
REACT_S = STALE_S + 0.5
PERIOD_S = 0.1


class Chain:
    def __init__(self, h):
        from pose_perception.msg import SafetyStatus
        from pose_perception.ros.safety_monitor_node import SafetyMonitorNode
        from rclpy.parameter import Parameter
        self.h, self.SafetyStatus = h, SafetyStatus
        common = {"rate_hz": 20.0, "stale_timeout_s": STALE_S, "publish_markers": False}
        self.safety = SafetyMonitorNode(namespace=h.ns, parameter_overrides=[
            Parameter(k, value=v) for k, v in dict(common, robot_frame="").items()])
        # a second monitor that measures in base_link, for which no transform exists
        tf_params = dict(common, robot_frame="base_link", status_topic="safety_tf/status")
        self.safety_tf = SafetyMonitorNode(
            node_name="safety_tf", namespace=h.ns,
            parameter_overrides=[Parameter(k, value=v) for k, v in tf_params.items()])
        self.status, self.status_tf = [], []     # (receive time, status)
        h.io.create_subscription(SafetyStatus, "safety/status",
                                 lambda m: self.status.append((time.monotonic(), m)), 100)
        h.io.create_subscription(SafetyStatus, "safety_tf/status",
                                 lambda m: self.status_tf.append((time.monotonic(), m)), 100)
        h.ex.add_node(self.safety)
        h.ex.add_node(self.safety_tf)
        h.spin_until(lambda: self.status and self.status_tf, "safety status")

    def now(self):
        return self.h.node.get_clock().now().nanoseconds * 1e-9

    def run(self, seconds, frame):
        """Call ``frame(stamp)`` every PERIOD_S (stamp = now) while spinning; returns
        (wall time at start, first stamp)."""
        t_wall, t_first = time.monotonic(), self.now()
        end = t_wall + seconds
        while time.monotonic() < end:
            if frame is not None:
                frame(self.now())
            self.h.spin_for(PERIOD_S)
        return t_wall, t_first

    def good(self, t):
        self.h.pub["info"].publish(info_msg())
        self.h.pub["depth"].publish(depth_msg(t, metres=3.0))
        self.h.pub["color"].publish(colour_msg(t))

    def until_clear(self):
        deadline = time.monotonic() + 5.0
        while self.status[-1][1].state != self.SafetyStatus.STATE_CLEAR:
            assert time.monotonic() < deadline, f"no CLEAR: {self.status[-1][1].reason}"
            self.good(self.now())
            self.h.spin_for(PERIOD_S)

    def check_fault(self, name, since_wall, first_stamp, reason, frames_published=True):
        """From REACT_S after the fault began: never CLEAR, UNKNOWN with ``reason``; no CLEAR
        computed from data stamped at or after the fault."""
        S = self.SafetyStatus
        during = [(t, m) for t, m in self.status if t >= since_wall]
        late = [m for t, m in during if t >= since_wall + REACT_S]
        assert late, name
        assert all(m.state != S.STATE_CLEAR for m in late), \
            (name, [(m.state_name, m.reason) for m in late if m.state == S.STATE_CLEAR][:2])
        assert late[-1].state == S.STATE_UNKNOWN and late[-1].speed_scale == 0.0, name
        assert any(reason in m.reason for _, m in during if m.state == S.STATE_UNKNOWN), \
            (name, late[-1].reason)
        if frames_published:
            stamp = first_stamp - 1e-6
            bad = [m for _, m in during if m.state == S.STATE_CLEAR and
                   m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= stamp]
            assert not bad, (name, bad[0].reason)


def test_safety_status_is_never_clear_on_untrusted_input(harness):
    h = harness({"depth_wait_s": 5.0})
    c = Chain(h)
    S = c.SafetyStatus
    try:
        # 1. CameraInfo never received: 2D skeletons (depth_used false) -> UNKNOWN from the start
        start, _ = c.run(1.2, lambda t: (h.pub["depth"].publish(depth_msg(t, metres=3.0)),
                                         h.pub["color"].publish(colour_msg(t))))
        assert h.skeletons and not h.skeletons[-1].depth_used
        assert all(m.state != S.STATE_CLEAR for _, m in c.status)
        c.check_fault("no CameraInfo", start, 0.0, "without depth")
        c.until_clear()

        def phase(name, seconds, frame, reason, frames_published=True):
            c.until_clear()
            wall, stamp = c.run(seconds, frame)
            c.check_fault(name, wall, stamp, reason, frames_published)

        # 2. depth without a single valid reading -> the frame goes out in 2D
        phase("all-invalid depth", 1.2, lambda t: (
            h.pub["depth"].publish(depth_image(t, np.zeros((H, W)), "16UC1")),
            h.pub["color"].publish(colour_msg(t))), "without depth")
        #    ... also when nobody is detected (e.g. something right in front of the lens)
        real_process = h.fake.process

        def nobody(*a, **kw):
            from pose_perception.core.types import FrameResult
            real_process(*a, **kw)
            return FrameResult()
        h.fake.process = nobody
        phase("all-invalid depth, nobody seen", 1.2, lambda t: (
            h.pub["depth"].publish(depth_image(t, np.zeros((H, W)), "16UC1")),
            h.pub["color"].publish(colour_msg(t))), "without depth")
        assert h.skeletons[-1].skeletons == [] and not h.skeletons[-1].depth_used
        h.fake.process = real_process
        # 3. NaN depth where the person is (valid elsewhere): person seen, not located
        nan_person = np.full((H, W), 3.0, np.float32)
        nan_person[20:100, 30:130] = np.nan
        phase("NaN depth on the person", 1.2, lambda t: (
            h.pub["depth"].publish(depth_image(t, nan_person)),
            h.pub["color"].publish(colour_msg(t))), "without any usable 3D keypoint")

        # 4. undecodable colour images: nothing is published -> stale
        def undecodable(t):
            bad = colour_msg(t)
            bad.step = 7
            h.pub["depth"].publish(depth_msg(t, metres=3.0))
            h.pub["color"].publish(bad)
        phase("decode errors", 1.5, undecodable, "no fresh perception", frames_published=False)

        # 5. unusable CameraInfo (NaN in K): 2D only
        def nan_k(t):
            info = info_msg()
            k = list(info.k)
            k[4] = float("nan")
            info.k = k
            h.pub["info"].publish(info)
            h.pub["depth"].publish(depth_msg(t, metres=3.0))
            h.pub["color"].publish(colour_msg(t))
        phase("NaN CameraInfo", 1.2, nan_k, "without depth")

        # 6. one stamp repeated: the copies are skipped -> stale
        c.until_clear()
        frozen = c.now()
        phase("duplicated stamps", 1.5, lambda t: c.good(frozen), "no fresh perception",
              frames_published=False)
        # 7. camera or pose node silent -> stale
        phase("stale perception", 1.2, None, "no fresh perception", frames_published=False)
        # 8. stamps going backwards (a bag loop, 5 s back): processed by the pose node after a
        #    tracking reset, refused by the monitor (time went backwards, then stale data)
        c.until_clear()
        wall, _ = c.run(1.2, lambda t: c.good(t - 5.0))
        c.check_fault("stamps backwards", wall, 0.0, "perception time went backwards",
                      frames_published=False)
        assert any("no fresh perception" in m.reason for t, m in c.status if t >= wall)
        c.until_clear()                               # and the chain recovers
        # 9. the monitor in base_link never had a transform: UNKNOWN all along, with the reason
        assert len(c.status_tf) > 50
        assert all(m.state == S.STATE_UNKNOWN for _, m in c.status_tf)
        assert any("no transform 'cam_optical' -> robot_frame 'base_link'" in m.reason
                   for _, m in c.status_tf)
    finally:
        c.safety.destroy_node()
        c.safety_tf.destroy_node()
