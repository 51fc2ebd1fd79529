"""Multi-camera coverage (core.coverage) and the safety monitor's unobserved-area policy."""
import math

import numpy as np
import pytest

from pose_perception.core.camera import CameraModel
from pose_perception.core.coverage import (CameraView, disk_zone, observed, sample_zone,
                                           unobserved)
from pose_perception.core.safety import (PersonObservation, SafetyConfig, SafetyMonitor,
                                         SafetyState, Zone)

# optical frame looking along the robot's +x (x right = -y, y down = -z, z forward = +x)
R_FRONT = np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, -1.0, 0]])


def _yaw(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def view(name, yaw_deg, fov_deg=90.0, height=1.0, max_range=5.0):
    """A 640x480 camera at the robot's centre, ``height`` up, looking ``yaw_deg`` from +x."""
    f = 320 / math.tan(math.radians(fov_deg) / 2)
    model = CameraModel(640, 480, [[f, 0, 319.5], [0, f, 239.5], [0, 0, 1]], [], "none")
    T = np.eye(4)
    T[:3, :3] = _yaw(math.radians(yaw_deg)) @ R_FRONT
    T[:3, 3] = (0, 0, height)
    return CameraView(name, model, T, min_range_m=0.3, max_range_m=max_range, margin_px=0)


def test_camera_view_contains_points_in_its_cone_and_range():
    v = view("front", 0)
    pts = np.array([[2.0, 0, 1.0], [2.0, 1.9, 1.0], [2.0, 2.1, 1.0], [-2.0, 0, 1.0],
                    [6.0, 0, 1.0], [0.2, 0, 1.0], [2.0, 0, 1.0 + 1.6]])
    assert v.contains(pts).tolist() == [True, True, False, False, False, False, False]


def test_four_cameras_cover_the_surroundings_and_one_silent_camera_leaves_a_hole():
    # 100 degrees wide each (overlapping by 10 degrees), 80 degrees high
    yaws = (("front", 0), ("left", 90), ("back", 180), ("right", 270))
    cams = [view(n, a, fov_deg=100) for n, a in yaws]
    sides = [Zone.box("front", "warning", 0.8, -0.5, 2, 0.5),
             Zone.box("left", "warning", -0.5, 0.8, 0.5, 2),
             Zone.box("back", "protective", -2, -0.5, -0.8, 0.5),
             Zone.box("right", "warning", -0.5, -2, 0.5, -0.8)]
    assert unobserved(sides, cams) == []
    assert unobserved(sides, cams[:3]) == ["right"]            # the right camera went silent
    # the warning-distance disk, the robot's own 0.6 m footprint left out: seen at hip height
    # by four cameras; right next to the robot at ankle height the cameras see over it
    disk = disk_zone("warning_distance", 2.0)
    assert unobserved([disk], cams, heights_m=(1.0,), min_radius_m=0.6) == []
    assert unobserved([disk], cams, heights_m=(0.2,), min_radius_m=0.6) == ["warning_distance"]
    assert unobserved([disk], cams, heights_m=(1.0,)) == ["warning_distance"]   # robot centre
    behind_right = np.array([[0.0, -1.5, 1.0]])
    assert observed(behind_right, cams).all() and not observed(behind_right, cams[:3]).any()
    # ignore zones are never reported
    assert unobserved([Zone.box("mirror", "ignore", 10, 10, 11, 11)], cams) == []


def test_sample_zone_covers_vertices_edges_and_heights():
    z = Zone.box("b", "protective", 0, 0, 1, 0.5, z_min=0.2, z_max=1.2)
    pts = sample_zone(z, 0.25, heights_m=(0.0, 1.0, 2.0))
    assert set(np.round(pts[:, 2], 6)) == {0.2, 1.0, 1.2}
    for corner in ((0, 0), (1, 0), (1, 0.5), (0, 0.5)):
        assert (np.abs(pts[:, :2] - corner).sum(axis=1) < 1e-9).any()
    assert pts[:, 0].min() >= -1e-9 and pts[:, 0].max() <= 1 + 1e-9
    # the disk polygon contains the disk
    d = disk_zone("d", 2.0)
    a = np.linspace(0, 2 * np.pi, 100)
    circle = np.c_[2 * np.cos(a), 2 * np.sin(a), np.zeros(100)]
    assert d.contains(circle, 1e-9).all()


def _far_person():
    pts = np.array([[4.0, 0, 1.0]] * 3)
    return PersonObservation(1, pts, np.ones(3, bool), np.ones(3))


@pytest.mark.parametrize("policy, state, scale", [("unknown", SafetyState.UNKNOWN, 0.0),
                                                  ("warning", SafetyState.WARNING, 0.3)])
def test_unobserved_area_is_never_clear(policy, state, scale):
    m = SafetyMonitor(SafetyConfig(unobserved_area_policy=policy))
    st = m.update([_far_person()], 1.0)
    assert st.state == SafetyState.CLEAR                 # coverage unknown: unchanged behaviour
    m.set_coverage([])
    assert m.evaluate(1.05).state == SafetyState.CLEAR   # everything observed
    m.set_coverage(["warning_distance"])                 # a camera went silent: at once
    st = m.evaluate(1.1)
    assert st.state == state and st.speed_scale == pytest.approx(scale)
    assert "warning_distance" in st.reason and "not observed" in st.reason
    st = m.update([_far_person()], 1.2)
    assert st.state == state
    m.set_coverage([])                                   # the camera is back
    assert m.evaluate(1.25).state == SafetyState.CLEAR


def test_unobserved_area_does_not_relax_a_protective_stop():
    m = SafetyMonitor(SafetyConfig(unobserved_area_policy="warning"))
    m.set_coverage(["left"])
    pts = np.array([[0.5, 0, 1.0]])
    st = m.update([PersonObservation(1, pts, np.ones(1, bool), np.ones(1))], 1.0)
    assert st.state == SafetyState.PROTECTIVE_STOP and st.speed_scale == 0.0
    m.reset()
    assert m.evaluate(1.1).state == SafetyState.UNKNOWN  # reset keeps the coverage, no data yet


def test_unobserved_policy_is_checked():
    with pytest.raises(ValueError, match="unobserved_area_policy"):
        SafetyConfig(unobserved_area_policy="clear")
    with pytest.raises(ValueError, match="unobserved_speed_scale"):
        SafetyConfig(unobserved_speed_scale=2.0)
