"""Child process for test_ros_people_fusion: stands in for one camera's pose node. Publishes a
SkeletonArray of two people (the same two for every camera, known in the world frame) at 30 Hz
on ``<namespace>/people/skeletons``, in the camera's own optical frame, until killed or for a
bounded time.

argv: namespace frame_id x y z qx qy qz qw (T_world_cam of this camera) [seconds]
"""
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy

from pose_perception.core.types import SOURCE_DEPTH, Keypoints, Person
from pose_perception.msg import SkeletonArray
from pose_perception.core import geometry as tfm
from pose_perception.ros.conversions import person_to_skeleton

# two people 1.5 m apart in the world (x forward, z up), 3 m in front of the rig
PEOPLE_WORLD = [np.array([3.0, 0.75, 1.0]), np.array([3.0, -0.75, 1.0])]


def body_points(centre: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(7)
    return centre + rng.uniform(-0.2, 0.2, (33, 3)) * [0.5, 1.0, 4.0]


def main():
    ns, frame = sys.argv[1], sys.argv[2]
    T_world_cam = tfm.make_transform([float(v) for v in sys.argv[3:6]],
                                     [float(v) for v in sys.argv[6:10]])
    seconds = float(sys.argv[10]) if len(sys.argv) > 10 else 60.0
    T_cam_world = tfm.invert(T_world_cam)
    rng = np.random.default_rng(abs(hash(ns)) % 1000)
    rclpy.init()
    node = rclpy.create_node("fake_pose_node", namespace=ns)
    pub = node.create_publisher(SkeletonArray, "people/skeletons",
                                QoSProfile(depth=5, reliability=QoSReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = SkeletonArray(depth_used=True)
        msg.header.frame_id = frame
        msg.header.stamp = node.get_clock().now().to_msg()
        for i, c in enumerate(PEOPLE_WORLD):
            kp = Keypoints("blazepose33", np.zeros((33, 2)), np.full(33, 0.9))
            kp.init_3d()
            kp.xyz[:] = tfm.apply(T_cam_world, body_points(c) + rng.normal(0, 0.01, (33, 3)))
            kp.xyz_valid[:] = True
            kp.xyz_sigma[:] = 0.02
            kp.xyz_source[:] = SOURCE_DEPTH
            p = Person(body=kp, box=np.array([10.0, 10, 100, 200]), score=0.9, track_id=i + 1)
            msg.skeletons.append(person_to_skeleton(p, msg.header))
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=1 / 30)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
