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
