"""Small helpers shared by the launch files in ``launch/`` (no rclpy, no launch imports)."""
from __future__ import annotations

import os

PACKAGE = "pose_perception"


def has_package(name: str) -> bool:
    """Whether the ament index knows package ``name`` (e.g. tf2_ros, rviz2)."""
    try:
        from ament_index_python.packages import get_package_prefix
        get_package_prefix(name)
        return True
    except Exception:
        return False


def share_dir(launch_file: str) -> str:
    """The package's installed share folder, or the source tree above ``launch_file`` (the
    calling launch file's ``__file__``) when running from a checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(PACKAGE)
    except Exception:  # running from a source tree
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(launch_file)), ".."))
