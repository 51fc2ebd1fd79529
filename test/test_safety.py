"""Safety monitor: every state and transition of README.md (section "Safety monitor")."""
import math

import numpy as np
import pytest

from pose_perception.core.safety import (PersonObservation, SafetyConfig, SafetyMonitor,
                                         SafetyState, Zone)

U, C, W, P = (SafetyState.UNKNOWN, SafetyState.CLEAR, SafetyState.WARNING,
              SafetyState.PROTECTIVE_STOP)
HEIGHTS = np.linspace(0.1, 1.7, 9)


def body(tid, d, bearing=0.0, reach=0.0, conf=0.9, layout=""):
    """A standing person in the robot frame (x forward, z up): 9 points on a vertical line at
    horizontal distance d..d+0.1 along ``bearing``; point 4 (a 'hand') reaches ``reach`` closer."""
    r = np.full(9, d + 0.1)
    r[2] = d
    r[4] = d - reach if reach else d + 0.05
    pts = np.stack([r * math.cos(bearing), r * math.sin(bearing), HEIGHTS], axis=1)
    return PersonObservation(tid, pts, np.ones(9, bool), np.full(9, conf), layout=layout)


def states(monitor, distances, t0=0.0, dt=0.1):
    out = []
    for i, d in enumerate(distances):
        people = [] if d is None else [body(1, d)]
        out.append(monitor.update(people, t0 + i * dt).state)
    return out


def test_start_up_nobody_and_stale_data():
    m = SafetyMonitor()
    s = m.evaluate(0.0)
    assert s.state == U and s.speed_scale == 0.0 and "no perception" in s.reason
    s = m.update([], 1.0)
    assert s.state == C and s.speed_scale == 1.0 and "nobody" in s.reason
    assert m.evaluate(1.5).state == C                      # age 0.5 = stale_timeout: still fresh
    s = m.evaluate(1.51)
    assert s.state == U and s.speed_scale == 0.0 and "no fresh perception" in s.reason
    assert math.isclose(s.age_s, 0.51)
    assert m.update([], 1.6).state == C                    # fresh data again


def test_approach_clear_warning_protective_and_speed_ramp():
    m = SafetyMonitor(SafetyConfig(warning_distance_m=2.0, protective_distance_m=1.0))
    dists = np.arange(3.0, 0.3, -0.05) + 0.013   # never exactly on a threshold
    seq, scales = [], []
    for i, d in enumerate(dists):
        s = m.update([body(4, d)], i * 0.05)
        seq.append(s.state)
        scales.append(s.speed_scale)
        assert s.closest_track_id == 4 and s.closest_keypoint_index == 2
        assert math.isclose(s.closest_distance_m, d, abs_tol=1e-9)
        want = C if d > 2.0 + 1e-9 else (W if d > 1.0 + 1e-9 else P)
        assert s.state == want, (d, s.state, s.reason)
    assert seq[0] == C and seq[-1] == P
    assert all(0.0 <= x <= 1.0 for x in scales)
    assert all(a >= b for a, b in zip(scales, scales[1:]))   # monotone while approaching
    s = m.update([body(4, 1.5)], 100.0)                      # after a gap: fresh start
    assert s.state == W and math.isclose(s.speed_scale, 0.5)


def test_hysteresis_on_distances():
    cfg = SafetyConfig(warning_distance_m=2.0, protective_distance_m=1.0, hysteresis_m=0.1)
    m = SafetyMonitor(cfg)
    seq = states(m, [3.0, 0.95, 1.05, 1.15, 1.05, 0.99, 2.05, 2.15, 2.05, 1.99, 2.05, 2.15])
    assert seq == [C, P, P, W, W, P, W, C, C, W, W, C]
    # noise around the warning distance does not make the state chatter
    rng = np.random.default_rng(0)
    m = SafetyMonitor(cfg)
    seq = states(m, 2.0 + rng.uniform(-0.04, 0.04, 200))
    changes = sum(a != b for a, b in zip(seq, seq[1:]))
    assert changes <= 1 and seq[-1] == W


def test_protective_stop_straight_to_clear_and_release_hold():
    m = SafetyMonitor()
    assert states(m, [0.5, 3.0]) == [P, C]
    m = SafetyMonitor(SafetyConfig(release_hold_s=0.3))
    seq = states(m, [0.5, 3.0, 3.0, 3.0, 3.0, 0.5, 3.0, 3.0, 3.0, 3.0, 1.5], dt=0.1)
    assert seq == [P, P, P, P, C, P, P, P, P, C, W]   # escalation at once, release after 0.3 s
    m2 = SafetyMonitor(SafetyConfig(release_hold_s=0.3))
    m2.update([body(1, 0.5)], 0.0)
    s = m2.update([body(1, 3.0)], 0.1)
    assert s.state == P and s.speed_scale == 0.0 and "holding" in s.reason


def test_untrusted_and_malformed_input():
    m = SafetyMonitor()
    assert m.update([body(1, 5.0)], 0.0).state == C
    s = m.update([], 0.1, trusted=False, reason="no CameraInfo")
    assert s.state == U and "no CameraInfo" in s.reason and s.speed_scale == 0.0
    assert m.evaluate(0.15).state == U                     # stays until a trusted update
    assert m.update([body(1, 5.0)], 0.2).state == C
    bad = (1, np.zeros((5, 2)), np.ones(5, bool), np.ones(5))
    s = m.update([bad], 0.3)
    assert s.state == U and "malformed" in s.reason
    assert m.update([body(1, 5.0)], 0.4).state == C
    assert m.update([], float("nan")).state == U


def test_data_from_the_future_and_time_going_backwards():
    m = SafetyMonitor()
    m.update([body(1, 5.0)], 10.0)
    assert m.evaluate(9.95).state == C                     # within max_future_s (clock offset)
    s = m.evaluate(9.95)
    assert s.state == C
    m = SafetyMonitor()
    m.update([body(1, 5.0)], 10.0)
    assert m.evaluate(9.8).state == U                      # 0.2 s in the future
    # update stamps going backwards (bag loop): reset, that update is not used
    m = SafetyMonitor()
    m.update([body(1, 5.0)], 10.0)
    s = m.update([body(1, 5.0)], 2.0)
    assert s.state == U and "backwards" in s.reason
    assert m.update([body(1, 5.0)], 2.1).state == C
    # evaluation clock going backwards: UNKNOWN until fresh data
    m = SafetyMonitor()
    m.update([body(1, 5.0)], 10.0)
    assert m.evaluate(10.1).state == C
    s = m.evaluate(3.0)
    assert s.state == U and "clock went backwards" in s.reason
    assert m.evaluate(3.1).state == U
    assert m.update([body(1, 5.0)], 3.2).state == C


def test_coming_back_from_unknown_uses_the_margins():
    m = SafetyMonitor(SafetyConfig(hysteresis_m=0.1))
    assert m.update([body(1, 2.05)], 0.0).state == W       # start-up counts as UNKNOWN
    assert m.update([body(1, 2.15)], 0.1).state == C
    assert m.evaluate(1.0).state == U                       # stale
    assert m.update([body(1, 2.05)], 1.1).state == W
    m2 = SafetyMonitor()
    m2.update([body(1, 3.0)], 0.0)
    assert m2.update([body(1, 1.05)], 5.0).state == P      # gap without evaluate: same rule


@pytest.mark.parametrize("policy,state", [("unknown", U), ("warning", W)])
def test_person_seen_in_2d_only(policy, state):
    m = SafetyMonitor(SafetyConfig(unlocated_person_policy=policy))
    far = body(1, 5.0)
    no3d = PersonObservation(2, np.full((9, 3), np.nan), np.zeros(9, bool), np.full(9, 0.9))
    s = m.update([far, no3d], 0.0)
    assert s.state == state and s.state != C
    assert s.unlocated_count == 1 and s.people_count == 2 and "2" in s.reason
    assert s.closest_track_id == 1                        # the located one is still reported
    assert s.speed_scale <= (0.0 if policy == "unknown" else 0.3)
    # valid 3D but every point below min_confidence is just as unlocated
    weak = body(3, 1.5, conf=0.2)
    assert SafetyMonitor(SafetyConfig(unlocated_person_policy=policy)).update(
        [weak], 0.0).state == state
    # once the person has 3D again, the state follows the distance
    assert m.update([far, body(2, 4.0)], 0.1).state == C


def test_closest_keypoint_several_people_and_distance_modes():
    m = SafetyMonitor()
    s = m.update([body(1, 3.0), body(2, 2.5, bearing=1.0, reach=0.8, layout="blazepose33")], 0.0)
    assert s.state == W and s.closest_track_id == 2 and s.closest_keypoint_index == 4
    assert s.closest_keypoint_name == "right_eye_inner"   # index 4 of blazepose33
    assert math.isclose(s.closest_distance_m, 1.7)
    np.testing.assert_allclose(s.closest_point,
                               [1.7 * math.cos(1.0), 1.7 * math.sin(1.0), HEIGHTS[4]])
    assert math.isclose(s.speed_scale, 0.7)
    # horizontal distance 2.05 m is within warning + margin; the 3D distance of the closest point
    # (0.5 m up) is 2.11 m, beyond it
    assert SafetyMonitor().update([body(1, 2.05)], 0.0).state == W
    s = SafetyMonitor(SafetyConfig(distance_mode="xyz")).update([body(1, 2.05)], 0.0)
    assert s.state == C and s.closest_keypoint_index == 2
    assert math.isclose(s.closest_distance_m, math.hypot(2.05, HEIGHTS[2]))
    r = SafetyMonitor(SafetyConfig(robot_radius_m=0.5))
    assert r.update([body(1, 1.4)], 0.0).state == P


def test_zones():
    prot = Zone.box("cell", "protective", 2.5, -1.0, 4.0, 1.0)
    warn = Zone.from_flat("aisle", "warning", [-1, 2, 6, 2, 6, 4, -1, 4])
    ign = Zone("mirror", "ignore", np.array([[1.0, -1.0], [2.2, -1.0], [1.0, -2.2]]))
    cfg = SafetyConfig(zones=[prot, warn, ign], hysteresis_m=0.1, warning_distance_m=2.0)
    m = SafetyMonitor(cfg)
    s = m.update([body(1, 3.0)], 0.0)                      # inside the protective box
    assert s.state == P and s.active_zones == ("cell",) and "cell" in s.reason
    # leaving the box by less than the hysteresis keeps the stop; by more releases it
    assert m.update([body(1, 2.45)], 0.1).state == P
    assert m.update([body(1, 2.25)], 0.2).state == C
    # far away but in the warning zone: WARNING with the speed cap
    s = m.update([body(1, 3.0, bearing=math.atan2(3.0, 3.0))], 0.3)
    assert s.state == W and s.active_zones == ("aisle",) and s.speed_scale == 0.5
    # a person at 1.9 m but inside the ignore zone (all points) is not counted
    inside = body(1, 1.9, bearing=-math.pi / 4)
    s = SafetyMonitor(cfg).update([inside], 0.0)
    assert s.state == C and s.people_count == 0
    assert SafetyMonitor().update([inside], 0.0).state == W     # would be without the zone
    # z range: points below z_min (the person is 1.7 m tall) are outside the zone
    low = Zone.box("overhead", "protective", 2.5, -1.0, 4.0, 1.0, z_min=1.9, z_max=2.5)
    s = SafetyMonitor(SafetyConfig(zones=[low])).update([body(1, 3.0)], 0.0)
    assert s.state == C
    # point-in-polygon on a non-convex (L-shaped) polygon
    ell = Zone.from_flat("L", "warning", [0, 0, 4, 0, 4, 1, 1, 1, 1, 4, 0, 4])
    pts = np.array([[0.5, 0.5, 0], [3, 0.5, 0], [0.5, 3, 0], [3, 3, 0], [2, 2, 0]])
    assert ell.contains(pts).tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(ell.signed_distance_xy(pts), [-0.5, -0.5, -0.5, 2.0, 1.0])


def test_protective_separation_distance():
    cfg = SafetyConfig(protective_distance_m=1.0, warning_distance_m=2.0, reaction_time_s=0.5,
                       stopping_time_s=0.3, human_speed_m_s=1.6)
    assert math.isclose(cfg.protective_separation_m(), 1.28)
    m = SafetyMonitor(cfg)
    s = m.update([body(1, 1.2)], 0.0)
    assert s.state == P and math.isclose(s.protective_distance_m, 1.28)
    assert math.isclose(s.warning_distance_m, 2.28)
    assert SafetyMonitor(cfg).update([body(1, 2.2)], 0.0).state == W
    fast = SafetyConfig(protective_distance_m=1.0, warning_distance_m=2.0, reaction_time_s=0.5,
                        stopping_time_s=0.3, use_measured_human_speed=True)
    runner = body(1, 1.5)
    runner.velocity = np.array([-2.5, 0.0, 0.0])          # 2.5 m/s: S_p = 2.0 m
    s = SafetyMonitor(fast).update([runner], 0.0)
    assert s.state == P and math.isclose(s.protective_distance_m, 2.0)


def test_speed_scale_shape_and_config_validation():
    m = SafetyMonitor(SafetyConfig(full_speed_distance_m=3.0, speed_scale_exponent=2.0))
    s = m.update([body(1, 2.5)], 0.0)
    assert s.state == C and math.isclose(s.speed_scale, 0.75 ** 2)
    for bad in (dict(protective_distance_m=2.0, warning_distance_m=1.0),
                dict(stale_timeout_s=0.0), dict(distance_mode="polar"),
                dict(unlocated_person_policy="ignore"), dict(hysteresis_m=-0.1),
                dict(full_speed_distance_m=0.5), dict(min_confidence=1.5)):
        with pytest.raises(ValueError):
            SafetyConfig(**bad)
    with pytest.raises(ValueError):
        Zone.box("z", "stop", 0, 0, 1, 1)
    with pytest.raises(ValueError):
        SafetyConfig(zones=[Zone.box("z", "warning", 0, 0, 1, 1)] * 2)


# ------------------------------------------ body surface, uncertainty, inferred points (issue 17)
def bp33(tid, d, sigma=0.0, inferred=None, conf=0.9):
    """A BlazePose-33 person in the robot frame: every joint centre at horizontal distance d."""
    pts = np.stack([np.full(33, d), np.zeros(33), np.linspace(0.1, 1.7, 33)], axis=1)
    return PersonObservation(tid, pts, np.ones(33, bool), np.full(33, conf),
                             layout="blazepose33", sigma=np.full(33, sigma), inferred=inferred)


def test_distances_are_to_the_body_surface_with_the_lifting_s_radii():
    from pose_perception.core.lifting import BODY_RADIUS_M
    s = SafetyMonitor(SafetyConfig(sigma_factor=0.0)).update([bp33(1, 1.5)], 0.0)
    # the hips (0.09 m radius, the largest) are the closest surface, 9 cm before their centres
    assert s.closest_keypoint_name in ("left_hip", "right_hip")
    assert math.isclose(s.closest_distance_m, 1.5 - BODY_RADIUS_M["blazepose33"][23])
    assert math.isclose(s.closest_point_radius_m, 0.09) and s.closest_point[0] == 1.5
    # the centre at 1.05 m is beyond the protective distance, its surface within it
    assert SafetyMonitor(SafetyConfig(sigma_factor=0.0)).update([bp33(1, 1.05)], 0.0).state == P
    # explicit radii (a skeleton with hands: body, then hand21 radii) override the layout's
    ob = bp33(1, 1.5)
    ob.radius = np.full(33, 0.2)
    assert math.isclose(SafetyMonitor(SafetyConfig(sigma_factor=0.0)).update(
        [ob], 0.0).closest_distance_m, 1.3)
    # points of a layout without a table (and faces: face468 radii are 0) are surface points
    assert math.isclose(SafetyMonitor().update([body(1, 1.5)], 0.0).closest_distance_m, 1.5)


def test_sigma_factor_makes_distances_conservative():
    for k in (0.0, 1.0, 3.0):
        s = SafetyMonitor(SafetyConfig(sigma_factor=k)).update([bp33(1, 2.5, sigma=0.1)], 0.0)
        assert math.isclose(s.closest_distance_m, 2.5 - 0.09 - k * 0.1)
        assert math.isclose(s.closest_point_sigma_m, 0.1)
    # default 2 sigma: 2.5 - 0.09 - 0.2 = 2.21 -> still CLEAR; with sigma 0.25 -> WARNING
    assert SafetyMonitor().update([bp33(1, 2.5, sigma=0.1)], 0.0).state == C
    assert SafetyMonitor().update([bp33(1, 2.5, sigma=0.25)], 0.0).state == W
    # a larger sigma makes a farther point the closest one
    ob = bp33(1, 2.5, sigma=0.01)
    ob.points[0, 0], ob.sigma[0] = 2.6, 0.3            # the nose: 2.6 - 0 - 0.6 = 2.0
    s = SafetyMonitor().update([ob], 0.0)
    assert s.closest_keypoint_index == 0 and math.isclose(s.closest_distance_m, 2.0)
    # unknown uncertainty (NaN, negative) counts as 0
    ob = bp33(1, 2.5)
    ob.sigma[:] = np.nan
    ob.sigma[1] = -1.0
    assert math.isclose(SafetyMonitor().update([ob], 0.0).closest_distance_m, 2.5 - 0.09)


def test_inferred_closest_point_is_reported_and_can_be_ignored():
    inferred = np.zeros(33, bool)
    inferred[27:33] = True                                # feet below the image: model-filled
    ob = bp33(1, 2.5, sigma=0.01, inferred=inferred)
    ob.points[27:33, 0] = 1.5
    s = SafetyMonitor().update([ob], 0.0)
    assert s.state == W and s.closest_point_inferred and s.closest_keypoint_index in range(27, 33)
    assert "closest point inferred" in s.reason
    s = SafetyMonitor(SafetyConfig(use_inferred_points=False)).update([ob], 0.0)
    assert s.state == C and not s.closest_point_inferred
    assert s.closest_keypoint_index not in range(27, 33)
    # a person located by inferred points only is unlocated when they are ignored
    only = bp33(2, 3.0, inferred=np.ones(33, bool))
    s = SafetyMonitor(SafetyConfig(use_inferred_points=False)).update([only], 0.0)
    assert s.state == U and s.unlocated_count == 1
    assert SafetyMonitor().update([only], 0.0).state == C


def test_zones_see_each_point_s_sphere():
    cell = Zone.box("cell", "protective", 2.0, -1.0, 4.0, 1.0)
    mirror = Zone.box("mirror", "ignore", 0.5, -1.0, 1.5, 1.0)
    cfg = SafetyConfig(zones=[cell], sigma_factor=0.0, hysteresis_m=0.0,
                       warning_distance_m=1.0, protective_distance_m=0.5)
    # hip centres 5 cm outside the protective box: their 9 cm surface is inside
    assert SafetyMonitor(cfg).update([bp33(1, 1.95)], 0.0).active_zones == ("cell",)
    assert SafetyMonitor(cfg).update([bp33(1, 1.85)], 0.0).active_zones == ()
    # an ignore zone drops a point only when its whole sphere lies inside
    cfg = SafetyConfig(zones=[mirror], sigma_factor=0.0)
    assert SafetyMonitor(cfg).update([bp33(1, 1.0)], 0.0).people_count == 0
    s = SafetyMonitor(cfg).update([bp33(1, 1.45)], 0.0)
    assert s.people_count == 1 and s.closest_keypoint_name in ("left_hip", "right_hip")


def test_malformed_uncertainty_or_radii_are_untrusted_input():
    for field_name, value in (("sigma", np.zeros(5)), ("inferred", np.zeros(40, bool)),
                              ("radius", np.full(33, -0.1))):
        ob = bp33(1, 2.0)
        setattr(ob, field_name, value)
        s = SafetyMonitor().update([ob], 0.0)
        assert s.state == U and "malformed" in s.reason, field_name
