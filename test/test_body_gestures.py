"""Body gestures (core.body_gestures): synthetic skeletons from a kinematic model over time, seen
by level, tilted and rolled cameras; timings of the hysteresis, waving frequency rules."""
import math

import numpy as np
import pytest

from pose_perception.core.body_gestures import (BodyGesture, BodyGestureConfig,
                                                BodyGestureTracker)
from pose_perception.core.perception import dataclass_from_dict
from pose_perception.core.types import Keypoints
from pose_perception.sources.kinematic_body import (ARM_CROSSED, ARM_DOWN, ARM_FORWARD, ARM_PALM_UP,
                                                    ARM_RAISED, ARM_TO_FACE, CAMERAS, SITTING,
                                                    Scene, body_points)

FPS = 30.0
G = BodyGesture
# arms (left, right) -> the only gesture expected
STATIC = {
    "arms_down": ((ARM_DOWN, ARM_DOWN), set()),
    "left_raised": ((ARM_RAISED, ARM_DOWN), {G.LEFT_HAND_RAISED}),
    "right_raised": ((ARM_DOWN, ARM_RAISED), {G.RIGHT_HAND_RAISED}),
    "both_raised": ((ARM_RAISED, ARM_RAISED), {G.BOTH_HANDS_RAISED}),
    "stop": ((ARM_DOWN, ARM_FORWARD), {G.STOP}),
    "arms_crossed": ((ARM_CROSSED, ARM_CROSSED), {G.ARMS_CROSSED}),
    "hand_on_face": ((ARM_TO_FACE, ARM_DOWN), {G.HANDS_ON_FACE}),
    "forearm_up_still": ((ARM_PALM_UP, ARM_DOWN), {G.LEFT_HAND_RAISED}),
}


def _frames(scene, arms_at, t0=0.0, t1=3.0, facing_deg=180.0, body=None, noise_m=0.0,
            seed=0):
    """(t, keypoints) at FPS; ``arms_at(t)`` -> (left, right) arm poses."""
    rng = np.random.default_rng(seed)
    out = []
    for t in np.arange(t0, t1, 1.0 / FPS):
        pts = body_points(arms=arms_at(float(t)), **(body or {}))
        kp = scene.keypoints(scene.world_points(pts, facing_deg=facing_deg))
        if noise_m:
            kp.xyz += rng.normal(0.0, noise_m, kp.xyz.shape).astype(np.float32)
        out.append((float(t), kp))
    return out


def _run(tracker, frames, up, track_id=1, **kw):
    """-> [(t, {gesture: ActiveGesture}, events)]."""
    out = []
    for t, kp in frames:
        active, events = tracker.update(track_id, kp, t, up, **kw)
        out.append((t, {a.gesture: a for a in active}, events))
    return out


def _right_arm_toward_camera(scene, body):
    """A straight right arm (as ``ARM_FORWARD``) aimed at the camera, for a person facing 180
    degrees (B's left is W's -y)."""
    shoulder = scene.world_points(body_points(**(body or {})))[12]
    d = np.asarray(scene.camera.position) - shoulder
    d_b = np.array([-d[1], d[2], -d[0]]) / np.linalg.norm(d)     # in B: left, up, forward
    d_b[0] = -d_b[0]                                             # given as for a left arm
    return (tuple(0.28 * d_b), tuple(0.53 * d_b))


@pytest.mark.parametrize("camera", sorted(CAMERAS))
@pytest.mark.parametrize("case", sorted(STATIC))
def test_static_gestures_from_any_camera(case, camera):
    scene = Scene(CAMERAS[camera])
    arms, expected = STATIC[case]
    body = SITTING if camera == "high" else None           # seated or standing: the same
    if case == "stop":
        arms = (ARM_DOWN, _right_arm_toward_camera(scene, body))
    out = _run(BodyGestureTracker(), _frames(scene, lambda t: arms, t1=1.0, body=body),
               scene.up)
    active = out[-1][1]
    assert set(active) == expected
    assert all(a.confidence > 0.9 and a.start_s == 0.0 for a in active.values())


def test_raised_hand_timing():
    scene = Scene(CAMERAS["pitched"])
    cfg = BodyGestureConfig()
    frames = _frames(scene, lambda t: (ARM_RAISED if 1.0 <= t < 3.0 else ARM_DOWN, ARM_DOWN),
                     t1=5.0)
    out = _run(BodyGestureTracker(cfg), frames, scene.up)
    on = [t for t, act, _ in out if G.LEFT_HAND_RAISED in act]
    assert on[0] == pytest.approx(1.0 + cfg.t_on_s, abs=0.5 / FPS)   # after t_on, not before
    last_up = 3.0 - 1.0 / FPS                                          # last raised frame
    assert on[-1] == pytest.approx(last_up + cfg.t_off_s - 1.0 / FPS, abs=0.5 / FPS)
    assert np.allclose(np.diff(on), 1.0 / FPS)                        # no gap
    events = [(t, e) for t, _, evs in out for e in evs]
    assert [(e.gesture, e.started) for _, e in events] == [(G.LEFT_HAND_RAISED, True),
                                                           (G.LEFT_HAND_RAISED, False)]
    assert events[0][1].stamp_s == on[0] and events[1][1].stamp_s == pytest.approx(
        last_up + cfg.t_off_s, abs=0.5 / FPS)
    assert all(act[G.LEFT_HAND_RAISED].start_s == pytest.approx(1.0, abs=0.5 / FPS)
               for _, act, _ in out if G.LEFT_HAND_RAISED in act)


def _wave_arms(hz, amplitude=0.08, t0=1.0, t1=4.0, arm=ARM_PALM_UP):
    elbow, wrist = arm

    def arms(t):
        if not t0 <= t < t1:
            return ARM_DOWN, ARM_DOWN
        dx = amplitude * math.sin(2.0 * math.pi * hz * (t - t0))
        return ARM_DOWN, (elbow, (wrist[0] + dx, wrist[1], wrist[2]))
    return arms


@pytest.mark.parametrize("camera", ["level", "rolled"])
def test_waving_at_2hz_is_detected(camera):
    scene = Scene(CAMERAS[camera])
    cfg = BodyGestureConfig()
    out = _run(BodyGestureTracker(cfg), _frames(scene, _wave_arms(2.0), t1=6.0,
                                                noise_m=0.005), scene.up)
    on = [t for t, act, _ in out if G.WAVING in act]
    # 3 reversals (0.25 s apart from 1.125 s), confirmed one amplitude later, then t_on
    assert 1.0 + 0.5 + cfg.t_on_s < on[0] < 1.0 + 0.9 + cfg.t_on_s
    assert 4.0 < on[-1] < 4.0 + 0.5 / cfg.wave_min_hz + cfg.t_off_s + 0.1
    assert np.allclose(np.diff(on), 1.0 / FPS, atol=1e-6)             # no gap while waving
    started = [e for _, _, evs in out for e in evs if e.gesture == G.WAVING]
    assert [e.started for e in started] == [True, False]
    # the waving hand is raised the whole time too
    assert all(G.RIGHT_HAND_RAISED in act for t, act, _ in out if 1.5 < t < 4.0)


@pytest.mark.parametrize("hz, expected", [(0.3, False), (0.45, False), (0.7, True), (1.0, True),
                                          (3.5, True), (4.5, False), (6.0, False)])
def test_waving_frequency_band(hz, expected):
    cfg = BodyGestureConfig()
    assert cfg.wave_min_hz == 0.5 and cfg.wave_max_hz == 4.0
    scene = Scene(CAMERAS["pitched"])
    out = _run(BodyGestureTracker(cfg), _frames(scene, _wave_arms(hz, t1=6.5), t1=7.0,
                                                noise_m=0.005), scene.up)
    on = [t for t, act, _ in out if G.WAVING in act]
    assert bool(on) == expected
    if expected:     # from the third reversal on, without a gap, until the arm comes down
        assert on[0] < 1.0 + 2.0 / hz + cfg.t_on_s + 0.1   # third reversal by 1.5 periods
        assert np.allclose(np.diff(on), 1.0 / FPS, atol=1e-6) and on[-1] > 6.5


@pytest.mark.parametrize("arms_at, why", [
    (lambda t: (ARM_DOWN, ARM_PALM_UP), "a still raised hand"),
    (_wave_arms(0.3), "too slow"),
    (_wave_arms(6.0), "too fast"),
    (_wave_arms(2.0, amplitude=0.02), "too small"),
    (_wave_arms(2.0, arm=ARM_DOWN), "the wrist below the elbow"),
])
def test_no_waving(arms_at, why):
    scene = Scene()
    out = _run(BodyGestureTracker(), _frames(scene, arms_at, t1=6.0, noise_m=0.005),
               scene.up)
    assert not any(G.WAVING in act for _, act, _ in out), why


def test_stop_needs_the_arm_toward_the_robot_and_an_open_palm_when_known():
    scene = Scene(CAMERAS["pitched"])
    stop = lambda t: (ARM_DOWN, ARM_FORWARD)  # noqa: E731

    def last(facing_deg=180.0, **kw):
        out = _run(BodyGestureTracker(), _frames(scene, stop, t1=1.0, facing_deg=facing_deg),
                   scene.up, **kw)
        return out[-1][1]
    assert G.STOP in last()
    assert G.STOP not in last(facing_deg=90.0)          # arm held out sideways to the camera
    assert G.STOP not in last(open_palm_prob=0.1)
    assert G.STOP in last(open_palm_prob=0.9)
    assert G.STOP in last(open_palm_prob={"right": 0.9, "left": 0.0})
    assert G.STOP not in last(open_palm_prob={"right": 0.1, "left": 0.9})
    # the robot elsewhere: 4 m to the person's right of the camera
    robot = scene.camera.rotation().T @ np.array([0.0, 4.0, 0.0])
    assert G.STOP not in last(target=robot)


def test_model_world_without_depth():
    scene = Scene()
    frames = _frames(scene, lambda t: (ARM_RAISED, ARM_FORWARD), t1=1.0)
    tracker = BodyGestureTracker()
    for t, kp in frames:
        world = kp.xyz - kp.xyz[[23, 24]].mean(axis=0)
        active, _ = tracker.update(1, Keypoints("blazepose33", kp.xy, kp.score), t, scene.up,
                                   world=world)
    assert {a.gesture for a in active} == {G.LEFT_HAND_RAISED, G.STOP}
    active, _ = BodyGestureTracker().update(1, Keypoints("blazepose33", kp.xy, kp.score),
                                            0.0, scene.up)
    assert active == []


def test_tracks_expire_and_forget_ends_their_gestures():
    scene = Scene()
    cfg = BodyGestureConfig(forget_after_s=1.0)
    tracker = BodyGestureTracker(cfg)
    raised = _frames(scene, lambda t: (ARM_RAISED, ARM_DOWN), t1=1.0)
    _run(tracker, raised, scene.up, track_id=1)
    _run(tracker, raised, scene.up, track_id=2)
    _, events = tracker.update(3, raised[0][1], 2.5, scene.up)     # 1 and 2 unseen 1.5 s
    assert sorted((e.track_id, e.gesture, e.started, e.stamp_s) for e in events) == [
        (1, G.LEFT_HAND_RAISED, False, 2.5), (2, G.LEFT_HAND_RAISED, False, 2.5)]
    _run(tracker, [(t + 3.0, kp) for t, kp in raised], scene.up, track_id=4)
    events = tracker.forget([3], 4.0)
    assert [(e.track_id, e.started) for e in events] == [(4, False)]
    active, _ = tracker.update(4, raised[0][1], 4.1, scene.up)     # starts afresh
    assert active == []
    # a track back after more than forget_after_s: its old gestures end, it starts afresh
    _run(tracker, [(t + 5.0, kp) for t, kp in raised], scene.up, track_id=5)
    active, events = tracker.update(5, raised[0][1], 7.5, scene.up)
    assert active == []
    assert [(e.track_id, e.gesture, e.started, e.stamp_s) for e in events] == [
        (5, G.LEFT_HAND_RAISED, False, 7.5)]


def test_config_validation():
    assert dataclass_from_dict(BodyGestureConfig, {"t_on_s": 0.5}).t_on_s == 0.5
    for bad in ({"t_on_s": -1.0}, {"wave_min_hz": 5.0}, {"wave_reversals": 1},
                {"stop_angle_deg": 90.0}, {"face_m": 0.0}, {"min_confidence": 0.0}):
        with pytest.raises(ValueError):
            dataclass_from_dict(BodyGestureConfig, bad)


def test_on_off_hysteresis_alone():
    from pose_perception.core.hysteresis import OnOffHysteresis
    h = OnOffHysteresis(t_on_s=0.3, t_off_s=0.5, min_confidence=0.5, tau_s=0.0)
    seq = [(0.0, 0.9), (0.1, 0.9), (0.2, 0.2), (0.3, 0.9), (0.5, 0.9), (0.6, 0.8),
           (0.7, 0.0), (1.0, 0.7), (1.4, 0.0), (1.8, 0.0), (1.9, 0.0)]
    log = [(t, h.update({"a": c}, t), h.active()) for t, c in seq]
    # the dip at 0.2 restarts the on-timer: active at 0.6 (0.3 s after 0.3); off at the first
    # frame 0.5 s after the last present one (1.0)
    transitions = [(t, tr) for t, tr, _ in log if tr]
    assert transitions == [(0.6, [("a", True, 0.8)]), (1.8, [("a", False, 0.0)])]
    assert log[5][2] == [("a", 0.8, 0.3)] and log[8][2] == [("a", 0.0, 0.3)]
    assert log[-1][2] == []
