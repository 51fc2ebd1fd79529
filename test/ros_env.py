"""Helpers for ROS integration tests: skip cleanly when rclpy or the built messages are missing,
and isolate each test run on its own DDS domain so parallel runs on one machine do not mix."""
import os
import random

import pytest


def require_ros():
    """Import rclpy and the package's generated messages, or skip with the reason."""
    try:
        import rclpy  # noqa: F401
        import pose_perception.msg  # noqa: F401
    except Exception as exc:  # ImportError, or a type-support library that does not load
        pytest.skip(f"ROS 2 Python or the built pose_perception messages unavailable: {exc}"
                    " (run `make setup`)")


def isolated_domain_id() -> str:
    """A DDS domain id for this test process (and the children it starts)."""
    if "POSE_PERCEPTION_TEST_DOMAIN" not in os.environ:
        os.environ["POSE_PERCEPTION_TEST_DOMAIN"] = str(random.Random(os.getpid()).randint(20, 99))
    os.environ["ROS_DOMAIN_ID"] = os.environ["POSE_PERCEPTION_TEST_DOMAIN"]
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return os.environ["ROS_DOMAIN_ID"]
