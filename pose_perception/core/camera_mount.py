"""Where the camera sits on the robot, for robots or benches without the camera in their TF tree.

A *camera mount* is the text ``"x y z roll pitch yaw"`` (metres, radians): the pose of the camera
body in the robot frame, in the REP 103 body convention (x forward along the optical axis, y
left, z up; roll, pitch, yaw about the fixed x, y, z axes, as everywhere in ROS). ``"0 0 1.2 0
0 0"`` is a camera 1.2 m above the robot frame's origin looking along its x axis; ``"0.1 0 1.0
0 0.3 0"`` looks 0.3 rad down. Images and skeletons are in the camera's *optical* frame (x
right, y down, z forward, REP 103), so the transform robot frame -> optical frame is the mount
followed by the fixed body -> optical rotation (:data:`OPTICAL_IN_BODY`), as camera drivers
publish it. ROS-free: the launch file turns the result into a static transform (tf2_ros) or a
``static_transforms`` parameter.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .geometry import quat_from_rpy, quat_multiply

# the optical frame (x right, y down, z forward) in the camera body frame (x forward, y left,
# z up), quaternion (x, y, z, w)
OPTICAL_IN_BODY = np.array([-0.5, 0.5, -0.5, 0.5])
MOUNT_FORMAT = "'x y z roll pitch yaw' (metres, radians)"


def parse_mount(text: str) -> np.ndarray:
    """``"x y z roll pitch yaw"`` -> (6,) floats; ``ValueError`` naming the expected format."""
    parts = str(text).split()
    try:
        values = np.array([float(v) for v in parts])
    except ValueError:
        raise ValueError(f"camera mount '{text}': numbers expected, {MOUNT_FORMAT}") from None
    if len(values) != 6 or not np.isfinite(values).all():
        raise ValueError(f"camera mount '{text}': expected six finite numbers, {MOUNT_FORMAT}")
    return values


def optical_frame_pose(mount: str) -> Tuple[np.ndarray, np.ndarray]:
    """(translation (3,), quaternion (x, y, z, w)) of the camera's optical frame in the robot
    frame, for the camera mount text ``mount``."""
    m = parse_mount(mount)
    q = quat_multiply(quat_from_rpy(*m[3:]), OPTICAL_IN_BODY)
    return m[:3], q / np.linalg.norm(q)


def static_transform_spec(parent: str, child: str, mount: str) -> str:
    """The ``static_transforms`` parameter entry ``"parent child x y z qx qy qz qw"`` (robot
    frame ``parent`` -> the camera's optical frame ``child``) for the camera mount text."""
    t, q = optical_frame_pose(mount)
    return " ".join([parent, child] + [f"{v:.9g}" for v in (*t, *q)])


def static_transform_publisher_args(parent: str, child: str, mount: str) -> List[str]:
    """Arguments of ``ros2 run tf2_ros static_transform_publisher`` for the same transform."""
    t, q = optical_frame_pose(mount)
    names = ("--x", "--y", "--z", "--qx", "--qy", "--qz", "--qw")
    args: List[str] = []
    for name, v in zip(names, (*t, *q)):
        args += [name, f"{v:.9g}"]
    return args + ["--frame-id", parent, "--child-frame-id", child]
