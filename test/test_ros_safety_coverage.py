"""safety_monitor_node with several cameras: the zones and the warning-distance disk that the
cameras fused into the input (SkeletonArray.cameras) do not observe are never CLEAR; a camera
dropping out of the fused input shrinks the coverage with that very message."""
import math

import numpy as np
import pytest

from test_ros_safety_node import CAM_TO_BASE, SafetyHarness

pytestmark = pytest.mark.ros


def _back_transform():
    from pose_perception.core import geometry as tfm
    front = tfm.quat_to_matrix([-0.5, 0.5, -0.5, 0.5])
    yaw = np.array([[-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])
    q = tfm.matrix_to_quat(yaw @ front)
    return "base_link cam_back 0 0 1.2 " + " ".join(str(v) for v in q)


def _info(frame):
    from sensor_msgs.msg import CameraInfo
    f = 320 / math.tan(math.radians(50))                 # 100 degrees wide, 640x480
    m = CameraInfo(width=640, height=480, distortion_model="plumb_bob")
    m.header.frame_id = frame
    m.k = [f, 0.0, 319.5, 0.0, f, 239.5, 0.0, 0.0, 1.0]
    m.d = [0.0] * 5
    m.p = [f, 0.0, 319.5, 0.0, 0.0, f, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    m.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    return m


def test_unobserved_zone_is_unknown_until_its_camera_is_back(ros):
    h = SafetyHarness(ros, {
        "robot_frame": "base_link", "static_transforms": [CAM_TO_BASE, _back_transform()],
        "rate_hz": 20.0, "coverage_cameras": ["/front", "/back"],
        "coverage_warning_disk": False, "zones": ["ahead", "behind"],
        "zones.ahead.kind": "warning", "zones.ahead.polygon": [1.0, -0.3, 2.0, -0.3, 2.0, 0.3],
        "zones.behind.kind": "warning",
        "zones.behind.polygon": [-1.0, -0.3, -2.0, -0.3, -2.0, 0.3]})
    try:
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from sensor_msgs.msg import CameraInfo
        from pose_perception.msg import SafetyStatus
        qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE)
        infos = {ns: h.io.create_publisher(CameraInfo, f"/{ns}/color/camera_info", qos)
                 for ns in ("front", "back")}

        def send_infos():
            infos["front"].publish(_info("cam"))
            infos["back"].publish(_info("cam_back"))
            return len(h.node.coverage.views) == 2
        h.spin_until(send_infos, "both camera views")
        cams = [["/front", "/back"]]
        publish = h.pub.publish

        def with_cameras(msg):
            msg.cameras = cams[0]
            publish(msg)
        h.pub.publish = with_cameras
        CLEAR, UNKNOWN = SafetyStatus.STATE_CLEAR, SafetyStatus.STATE_UNKNOWN
        for _ in range(3):                       # a person far ahead; both cameras observing
            h.send_person(3.5)
            h.spin_until(lambda: h.status[-1].state == CLEAR, "CLEAR with both cameras")
        cams[0] = ["/front"]                     # the back camera fell out of the fusion
        h.send_person(3.5)
        h.spin_until(lambda: h.status[-1].state == UNKNOWN, "UNKNOWN: 'behind' unobserved")
        assert "'behind'" in h.status[-1].reason and "'ahead'" not in h.status[-1].reason
        # drawn: the unobserved zone in the UNKNOWN colour, the observed one in its own
        zones = [m for m in h.node.markers(h.node.monitor.evaluate(h.now()),
                                           h.node.get_clock().now()).markers
                 if m.ns == "safety_zones"]
        colour = {round(m.points[0].x, 3): (m.color.r, m.color.g, m.color.b) for m in zones}
        assert colour[-1.0] == pytest.approx((0.6, 0.2, 0.8)) and colour[1.0][2] < 0.1
        cams[0] = ["/front", "/back"]
        h.send_person(3.5)
        h.spin_until(lambda: h.status[-1].state == CLEAR, "CLEAR again")
    finally:
        h.close()
