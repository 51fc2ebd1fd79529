"""End to end through ROS topics with the real models: recorded RGB-D frames of a robot's head
camera (rgbd_dev/tue_hsr, one standing person) published by sample_camera_node -> pose_node
-> skeletons, faces and markers.

Stamps: the recording's depth is stamped 0.11-0.32 s before its colour image. This test publishes
colour and depth with the *same* stamp (stamp_mode 'now', as an aligned RealSense stream does);
pairing offset stamps is covered by test_ros_compat (slop) and test_ros_pose_node (no pair ->
colour alone)."""
import time

import cv2
import numpy as np
import pytest

from ros_env import isolated_domain_id, require_ros

pytestmark = [pytest.mark.ros, pytest.mark.models]


def test_standing_person_found_with_hip_at_his_depth(shared_data):
    require_ros()
    isolated_domain_id()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from visualization_msgs.msg import MarkerArray

    from pose_perception.sources.rgbd_folder import load_rgbd_folder
    from pose_perception.msg import FaceLandmarksArray, Skeleton, SkeletonArray
    from pose_perception.ros.conversions import stamp_to_ns
    from pose_perception.ros.pose_node import PoseNode
    from pose_perception.ros.sample_camera_node import SampleCameraNode

    frames = load_rgbd_folder(shared_data / "rgbd_dev" / "tue_hsr")
    rclpy.init()
    nodes = []
    try:
        try:
            pose = PoseNode(namespace="/it", parameter_overrides=[
                Parameter("use_gpu", value=False), Parameter("camera_namespace",
                                                             value="/it/camera")])
        except (FileNotFoundError, RuntimeError) as exc:
            pytest.skip(f"models not provisioned ({exc}); run `pose-perception provision`")
        nodes.append(pose)
        cam = SampleCameraNode(frames, namespace="/it", parameter_overrides=[
            Parameter("rate_hz", value=5.0), Parameter("camera_namespace", value="/it/camera")])
        nodes.append(cam)
        io = rclpy.create_node("io", namespace="/it")
        nodes.append(io)
        sk, fa, mk = [], [], []
        io.create_subscription(SkeletonArray, "people/skeletons", sk.append, 10)
        io.create_subscription(FaceLandmarksArray, "people/faces", fa.append, 10)
        io.create_subscription(MarkerArray, "people/markers", mk.append, 10)
        ex = SingleThreadedExecutor()
        for n in nodes:
            ex.add_node(n)
        deadline = time.monotonic() + 60
        while (len(sk) < 6 or not mk or not fa) and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert len(sk) >= 6, f"only {len(sk)} SkeletonArrays in 60 s"
        index_of = {int(round(s * 1e9)): i for i, s in cam.published}
        checked = 0
        for msg in sk[2:]:
            assert msg.header.frame_id == "head_rgbd_sensor_rgb_frame" and msg.depth_used
            frame = frames[index_of[stamp_to_ns(msg.header.stamp)] % len(frames)]
            assert len(msg.skeletons) >= 1
            s = max(msg.skeletons, key=lambda s: s.bbox_y_max - s.bbox_y_min)
            assert s.layout == "blazepose33" and s.track_id > 0 and s.confidence > 0.5
            # his silhouette's depth: the recorded depth inside his torso polygon
            torso = np.array([[s.keypoints[i].x, s.keypoints[i].y] for i in
                              (Skeleton.BP33_LEFT_SHOULDER, Skeleton.BP33_RIGHT_SHOULDER,
                               Skeleton.BP33_RIGHT_HIP, Skeleton.BP33_LEFT_HIP)])
            mask = np.zeros(frame.depth.shape, np.uint8)
            cv2.fillPoly(mask, [np.round(torso).astype(np.int32)], 1)
            d = frame.depth[(mask > 0) & np.isfinite(frame.depth)]
            assert d.size > 50
            silhouette_z = float(np.median(d))
            hips = [s.keypoints[i] for i in (Skeleton.BP33_LEFT_HIP, Skeleton.BP33_RIGHT_HIP)
                    if s.keypoints[i].position_valid]
            assert hips, "no valid 3D hip"
            for hip in hips:
                assert abs(hip.position.z - silhouette_z) < 0.3, (hip.position.z, silhouette_z)
            assert s.centroid_valid and abs(s.centroid.z - silhouette_z) < 0.3
            checked += 1
        assert checked >= 4
        assert any(m.ns == "joints" and len(m.points) >= 10 for a in mk for m in a.markers)
        assert any(len(f.landmarks) == 468 for a in fa for f in a.faces)
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown()
