"""sample_camera_node: recorded RGB-D frames become the messages a camera driver publishes
(encodings, CameraInfo, identical or recorded stamps), at a rate, looping or not."""
import time

import numpy as np
import pytest

from ros_env import isolated_domain_id, require_ros

pytestmark = pytest.mark.ros


def _frames(shared_data, name, n=None):
    from pose_perception.sources.rgbd_folder import load_rgbd_folder
    return load_rgbd_folder(shared_data / "rgbd_dev" / name, limit=n)


def test_frame_messages_as_a_driver_sends_them(shared_data):
    require_ros()
    from pose_perception.ros.conversions import (camera_info_to_model, image_msg_to_array,
                                                 stamp_to_sec)
    from pose_perception.ros.sample_camera_node import frame_messages
    rs = _frames(shared_data, "realsense_two_people", 1)[0]
    c, ci, d, di = frame_messages(rs, 12.5, "cam")
    assert (c.encoding, d.encoding) == ("rgb8", "16UC1")
    np.testing.assert_array_equal(image_msg_to_array(c), rs.rgb)
    np.testing.assert_array_equal(image_msg_to_array(d), rs.depth)
    assert c.header == d.header == ci.header == di.header
    assert stamp_to_sec(c.header.stamp) == pytest.approx(12.5)
    assert camera_info_to_model(ci).fx == pytest.approx(617.25)
    bgr, _, _, _ = frame_messages(rs, 1.0, "cam", color_encoding="bgr8")
    np.testing.assert_array_equal(image_msg_to_array(bgr), rs.rgb[..., ::-1])
    tue = _frames(shared_data, "tue_hsr", 1)[0]
    _, _, d32, _ = frame_messages(tue, 1.0, "head")
    assert d32.encoding == "32FC1"
    a = image_msg_to_array(d32)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(tue.depth))
    _, _, d16, _ = frame_messages(tue, 1.0, "head", depth_encoding="16UC1",
                                  depth_stamp_s=0.75)
    mm = image_msg_to_array(d16)
    ok = np.isfinite(tue.depth)
    assert np.abs(mm[ok] / 1000.0 - tue.depth[ok]).max() <= 0.0006 and (mm[~ok] == 0).all()
    assert stamp_to_sec(d16.header.stamp) == pytest.approx(0.75)


def test_node_publishes_synchronised_frames_then_stops(shared_data):
    require_ros()
    isolated_domain_id()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image

    from pose_perception.ros.conversions import stamp_to_ns
    from pose_perception.ros.sample_camera_node import SampleCameraNode

    rclpy.init()
    try:
        frames = _frames(shared_data, "tue_hsr")
        cam = SampleCameraNode(frames, namespace="/sc", parameter_overrides=[
            Parameter("rate_hz", value=20.0), Parameter("loop", value=False),
            Parameter("stamp_mode", value="recorded"), Parameter("camera_namespace",
                                                                 value="/sc/camera")])
        io = rclpy.create_node("io", namespace="/sc")
        got = {"c": [], "d": [], "i": []}
        io.create_subscription(Image, "/sc/camera/color/image_raw", got["c"].append, 10)
        io.create_subscription(Image, "/sc/camera/aligned_depth_to_color/image_raw",
                               got["d"].append, 10)
        io.create_subscription(CameraInfo, "/sc/camera/color/camera_info", got["i"].append, 10)
        ex = SingleThreadedExecutor()
        ex.add_node(io)
        deadline = time.monotonic() + 10
        while cam.pub_color.get_subscription_count() < 1 or \
                cam.pub_depth.get_subscription_count() < 1:
            ex.spin_once(timeout_sec=0.05)
            assert time.monotonic() < deadline
        ex.add_node(cam)
        while min(len(got["c"]), len(got["d"])) < len(frames) and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.02)
        assert cam.done and len(got["c"]) == len(frames) == len(got["d"])
        assert got["c"][0].header.frame_id == "head_rgbd_sensor_rgb_frame"
        # 'recorded' keeps the recorded colour/depth offsets (the depth is older, 0.11-0.32 s)
        for c, d, f in zip(got["c"], got["d"], frames):
            off = (stamp_to_ns(c.header.stamp) - stamp_to_ns(d.header.stamp)) * 1e-9
            assert off == pytest.approx(f.stamp_s - f.depth_stamp_s, abs=1e-6)
            assert 0.1 <= off <= 0.35
        cam.destroy_node()
        io.destroy_node()
    finally:
        rclpy.shutdown()
