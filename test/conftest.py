"""Shared pytest fixtures: where the development data and the provisioned models are."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POSE_PERCEPTION_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (development data); tests using it skip cleanly where a clone lacks it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"development data not found at {SHARED_DATA} (set POSE_PERCEPTION_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def ros():
    """rclpy initialised for one test module, on this run's own DDS domain (skips without ROS)."""
    from ros_env import isolated_domain_id, require_ros
    require_ros()
    isolated_domain_id()
    import rclpy
    rclpy.init()
    yield rclpy
    rclpy.shutdown()


@pytest.fixture
def harness(ros):
    """make(params=None, **fake_kwargs) -> a PoseNode test harness (test_ros_pose_node.Harness),
    closed at the end of the test."""
    from test_ros_pose_node import Harness
    made = []

    def make(params=None, **kw):
        h = Harness(ros, params, **kw)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()
