"""Child process for test_ros_messages: builds a SkeletonArray and a FaceLandmarksArray with known
content and publishes them until killed (or for a bounded time)."""
import math
import sys
import time

import rclpy
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from pose_perception.msg import (FaceLandmarks, FaceLandmarksArray, Keypoint, Skeleton,
                                 SkeletonArray)


def keypoint(i: int, valid: bool) -> Keypoint:
    k = Keypoint(x=float(10 + i), y=float(20 + 2 * i), confidence=0.5 + 0.01 * i)
    if valid:
        k.position.x, k.position.y, k.position.z = 0.01 * i, -0.02 * i, 1.5 + 0.001 * i
        k.position_valid, k.position_sigma = True, 0.01
        k.position_source = Keypoint.SOURCE_DEPTH
    else:
        k.position.x = k.position.y = k.position.z = math.nan
        k.position_sigma, k.position_source = math.nan, Keypoint.SOURCE_NONE
    return k


def build():
    sk = SkeletonArray()
    sk.header.frame_id = "camera_color_optical_frame"
    sk.header.stamp.sec, sk.header.stamp.nanosec = 1234, 5678
    sk.depth_used = True
    for tid in (3, 7):
        s = Skeleton(track_id=tid, confidence=0.9, layout=Skeleton.LAYOUT_BLAZEPOSE33)
        s.header = sk.header
        s.keypoints = [keypoint(i, valid=(i % 5 != 0)) for i in range(33)]
        s.bbox_x_min, s.bbox_y_min, s.bbox_x_max, s.bbox_y_max = 1.0, 2.0, 101.0, 202.0
        s.has_face = tid == 3
        sk.skeletons.append(s)
    fa = FaceLandmarksArray()
    fa.header = sk.header
    f = FaceLandmarks(face_id=3, associated=True, skeleton_id=3, confidence=0.8,
                      layout=FaceLandmarks.LAYOUT_FACE468)
    f.header = sk.header
    f.landmarks = [keypoint(i, valid=True) for i in range(468)]
    f.head_pose.orientation.w = 1.0
    f.head_pose_valid = True
    fa.faces.append(f)
    return sk, fa


def main():
    rclpy.init()
    node = rclpy.create_node("test_msg_publisher")
    qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    pub_s = node.create_publisher(SkeletonArray, "skeletons", qos)
    pub_f = node.create_publisher(FaceLandmarksArray, "faces", qos)
    sk, fa = build()
    deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 30)
    while time.monotonic() < deadline:
        pub_s.publish(sk)
        pub_f.publish(fa)
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
