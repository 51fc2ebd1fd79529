"""ROS integration: the package's generated messages cross a process boundary intact."""
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_env import isolated_domain_id, require_ros

pytestmark = pytest.mark.ros


def test_skeleton_and_face_arrays_received_intact_in_another_process():
    require_ros()
    isolated_domain_id()
    import rclpy
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

    from pose_perception.msg import FaceLandmarksArray, Keypoint, Skeleton, SkeletonArray

    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("msg_publisher_proc.py")),
                             "40"])
    got = {}
    rclpy.init()
    try:
        node = rclpy.create_node("test_msg_subscriber")
        qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(SkeletonArray, "skeletons", lambda m: got.setdefault("s", m), qos)
        node.create_subscription(FaceLandmarksArray, "faces", lambda m: got.setdefault("f", m), qos)
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown()
        proc.kill()
        proc.wait()
    assert set(got) == {"s", "f"}, f"received only {sorted(got)}"

    sk, fa = got["s"], got["f"]
    assert sk.header.frame_id == "camera_color_optical_frame"
    assert (sk.header.stamp.sec, sk.header.stamp.nanosec) == (1234, 5678)
    assert sk.depth_used
    assert [s.track_id for s in sk.skeletons] == [3, 7]
    s = sk.skeletons[0]
    assert s.layout == Skeleton.LAYOUT_BLAZEPOSE33 == "blazepose33"
    assert len(s.keypoints) == 33 and s.has_face and not sk.skeletons[1].has_face
    assert (s.bbox_x_min, s.bbox_y_max) == (1.0, 202.0)
    for i, k in enumerate(s.keypoints):
        assert (k.x, k.y) == (10 + i, 20 + 2 * i)
        assert k.confidence == pytest.approx(0.5 + 0.01 * i)
        if i % 5 == 0:
            assert not k.position_valid and math.isnan(k.position.z)
            assert k.position_source == Keypoint.SOURCE_NONE
        else:
            assert k.position_valid and k.position.z == pytest.approx(1.5 + 0.001 * i)
            assert k.position_source == Keypoint.SOURCE_DEPTH
    assert Skeleton.BP33_LEFT_HIP == 23 and Skeleton.COCO17_RIGHT_ANKLE == 16
    f = fa.faces[0]
    assert (f.face_id, f.associated, f.skeleton_id) == (3, True, 3)
    assert f.layout == "face468" and len(f.landmarks) == 468 and f.head_pose_valid
    assert f.landmarks[467].x == 10 + 467
