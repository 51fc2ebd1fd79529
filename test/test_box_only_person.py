"""A person found by the whole-body detector but without usable landmarks (box-only) reaches the
safety monitor: their distance comes from the depth inside the box (the nearest surface), is
marked as such in the Skeleton, and the monitor acts on it."""
import math

import numpy as np
import pytest

from pose_perception.core.camera import CameraModel
from pose_perception.core.lifting import Lifter
from pose_perception.core.ssd import Detection
from pose_perception.core.person_fusion import box_only_person
from pose_perception.core.types import FOUND_BY_BOX, FrameResult

CAM = CameraModel(640, 480, [[540.0, 0, 320.0], [0, 540.0, 240.0], [0, 0, 1]])
BOX = np.array([250.0, 100.0, 390.0, 460.0], np.float32)


def _scene(person_z=1.6, wall_z=4.0, front_z=None):
    """Depth: a wall, a person-shaped block in the box (a rounded front: the middle column 8 cm
    nearer than the sides), optionally a narrow thing in front of part of the box."""
    d = np.full((480, 640), wall_z, np.float32)
    x0, y0, x1, y1 = BOX.astype(int)
    cols = np.arange(x0 + 20, x1 - 20)
    bulge = 0.08 * (1 - ((cols - cols.mean()) / (np.ptp(cols) / 2)) ** 2)
    d[y0:y1, x0 + 20:x1 - 20] = person_z - bulge[None, :]
    d[::7, ::5] = np.nan                                   # holes, as real sensors have
    if front_z is not None:
        d[y0:y0 + 40, x0 + 40:x0 + 60] = front_z
    return d


def test_box_only_person_gets_its_nearest_surface_from_depth():
    res = FrameResult(persons=[box_only_person(Detection(BOX, 0.8, np.zeros((0, 2))))])
    Lifter().lift_frame(res, _scene(), CAM)
    p = res.persons[0]
    assert p.found_by == FOUND_BY_BOX and p.body.xyz_valid is not None
    assert not p.body.xyz_valid.any()                       # no joint is made up
    assert p.centroid is not None
    # on the box centre's ray, at the person's near surface (1.52-1.60 m), not the wall
    assert 1.50 <= p.centroid[2] <= 1.60
    assert abs(p.centroid[0] - (320.0 - 320.0) / 540.0 * p.centroid[2]) < 0.01
    assert 0.0 < p.centroid_sigma < 0.1


def test_box_only_person_without_depth_has_no_position():
    res = FrameResult(persons=[box_only_person(Detection(BOX, 0.8, np.zeros((0, 2))))])
    Lifter().lift_frame(res, np.full((480, 640), np.nan, np.float32), CAM)
    assert res.persons[0].centroid is None and math.isnan(res.persons[0].centroid_sigma)


def test_box_only_person_reaches_the_safety_monitors_distance():
    from ros_env import require_ros
    require_ros()
    from std_msgs.msg import Header

    from pose_perception.core.safety import SafetyConfig, SafetyMonitor, SafetyState
    from pose_perception.msg import Skeleton
    from pose_perception.ros.conversions import (frame_result_to_msgs, observation_point_name,
                                                 skeletons_to_observations)
    res = FrameResult(persons=[box_only_person(Detection(BOX, 0.8, np.zeros((0, 2))))])
    Lifter().lift_frame(res, _scene(person_z=0.9), CAM)
    sk, _ = frame_result_to_msgs(res, Header(frame_id="camera"), depth_used=True)
    s = sk.skeletons[0]
    assert s.found_by == Skeleton.FOUND_BY_BOX and s.centroid_valid
    assert not any(k.position_valid for k in s.keypoints)
    assert all(k.confidence == 0.0 and math.isnan(k.x) for k in s.keypoints)
    assert 0.0 < s.centroid_sigma < 0.1 and s.confidence == pytest.approx(0.8)
    obs = skeletons_to_observations(sk)
    mon = SafetyMonitor(SafetyConfig())
    mon.update(obs, 10.0)
    st = mon.evaluate(10.0)
    assert st.state in (SafetyState.PROTECTIVE_STOP, SafetyState.WARNING)
    # the monitor measures in its frame's ground plane (here the message frame, no TF); the box
    # surface is on the skin already (radius 0), made conservative by sigma_factor x sigma
    np.testing.assert_allclose(st.closest_point, [s.centroid.x, s.centroid.y, s.centroid.z],
                               atol=1e-6)
    expected = math.hypot(s.centroid.x, s.centroid.y) - mon.config.sigma_factor * s.centroid_sigma
    assert st.closest_distance_m == pytest.approx(max(expected, 0.0), abs=1e-6)
    assert observation_point_name(s, st.closest_keypoint_index) == "box_surface"
    assert st.unlocated_count == 0


def test_box_only_person_is_drawn_in_rviz():
    from ros_env import require_ros
    require_ros()
    from std_msgs.msg import Header

    from pose_perception.ros.conversions import frame_result_to_msgs
    from pose_perception.ros.markers import MarkerBuilder
    res = FrameResult(persons=[box_only_person(Detection(BOX, 0.8, np.zeros((0, 2))))])
    Lifter().lift_frame(res, _scene(), CAM)
    sk, _ = frame_result_to_msgs(res, Header(frame_id="camera"), depth_used=True)
    ms = MarkerBuilder().build(sk).markers
    sphere = [m for m in ms if m.ns == "box_only"]
    assert len(sphere) == 1
    assert sphere[0].pose.position.z == pytest.approx(sk.skeletons[0].centroid.z)
    assert any(m.ns == "labels" and "box only" in m.text for m in ms)
    assert not any(m.ns in ("joints", "bones") for m in ms)
