"""One Euro filter and per-track smoothing: jitter reduction, responsiveness, track switches."""
import math

import numpy as np
import pytest

from pose_perception.core.smoothing import (KeypointSmoother, OneEuroFilter, PersonSmoother,
                                            SmootherConfig)
from pose_perception.core.types import Hand, Keypoints
from synthetic_people import make_person

FPS = 30.0


def test_one_euro_without_beta_is_an_exponential_filter():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    dt = 1 / FPS
    alpha = 1 / (1 + 1 / (2 * math.pi * 1.0) / dt)
    x = np.array([0.0, 10.0])
    y = f(x, 0.0)
    np.testing.assert_array_equal(y, x)        # first sample passes through
    expect = x.copy()
    for i in range(1, 20):
        target = np.array([5.0, -5.0])
        expect = expect + alpha * (target - expect)
        np.testing.assert_allclose(f(target, i * dt), expect, rtol=1e-12)


def test_step_response_beta_makes_it_faster():
    """A 100 px step: the adaptive cutoff must follow within ~0.2 s; without beta it lags."""
    def frames_to_90(beta):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        for i in range(30):
            f(np.zeros(2), i / FPS)
        for k in range(1, 200):
            if f(np.full(2, 100.0), (29 + k) / FPS)[0] >= 90.0:
                return k
        return 200
    fast, slow = frames_to_90(0.02), frames_to_90(0.0)
    print(f"\nstep 100 px: 90 % reached after {fast} frames with beta=0.02, {slow} with beta=0")
    assert fast <= 6 and slow >= 3 * fast


def test_static_person_jitter_reduced():
    rng = np.random.default_rng(0)
    sm = PersonSmoother(SmootherConfig())
    truth = make_person(0.3, 3.0)
    raw_err2d, out_err2d, raw_err3d, out_err3d, speeds = [], [], [], [], []
    for i in range(90):
        p = make_person(0.3, 3.0, noise_px=2.0, noise_m=0.02, rng=rng)
        p.track_id = 7
        (s,) = sm.update([p], i / FPS)
        if i >= 30:   # after warm-up
            speeds.append(float(np.linalg.norm(s.velocity)))
            raw_err2d.append(p.body.xy - truth.body.xy)
            out_err2d.append(s.body.xy - truth.body.xy)
            raw_err3d.append(p.body.xyz - truth.body.xyz)
            out_err3d.append(s.body.xyz - truth.body.xyz)
    errors = dict(raw2d=raw_err2d, out2d=out_err2d, raw3d=raw_err3d, out3d=out_err3d)
    j = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errors.items()}
    print(f"\nstatic person jitter (RMS per coordinate): 2D {j['raw2d']:.2f} px -> "
          f"{j['out2d']:.2f} px, 3D {100 * j['raw3d']:.2f} cm -> {100 * j['out3d']:.2f} cm")
    print(f"static person speed estimate: mean {np.mean(speeds):.3f} m/s, max {max(speeds):.3f}")
    assert j["out2d"] < 0.5 * j["raw2d"]
    assert np.mean(speeds) < 0.25
    assert j["out3d"] < 0.5 * j["raw3d"]


def test_moving_person_lag_is_bounded_and_velocity_estimated():
    """Walking 1 m/s sideways at 3 m (200 px/s): the smoothed keypoints lag only a little and the
    torso velocity converges to (1, 0, 0) m/s."""
    sm = PersonSmoother()
    lags, vel = [], None
    for i in range(60):
        p = make_person(-1.0 + i / FPS, 3.0)
        p.track_id = 3
        (s,) = sm.update([p], i / FPS)
        if i == 0:
            assert s.velocity is None      # one sample: no velocity yet
        lags.append(float(np.mean(p.body.xy[:, 0] - s.body.xy[:, 0])))
        vel = s.velocity
    print(f"\nlag walking 200 px/s: {lags[-1]:.1f} px; velocity {np.round(vel, 3)} m/s")
    assert 0 < lags[-1] < 15.0
    np.testing.assert_allclose(vel, [1.0, 0.0, 0.0], atol=0.1)
    np.testing.assert_allclose(s.centroid, p.centroid if p.centroid is not None else
                               [-1.0 + 59 / FPS, -0.25, 3.0], atol=0.1)


def test_no_smoothing_across_a_track_switch():
    sm = PersonSmoother()
    for i in range(20):
        p = make_person(-1.0, 3.0)
        p.track_id = 1
        sm.update([p], i / FPS)
    # the same person now carries id 2 (e.g. after a track switch) and another place
    q = make_person(1.0, 3.0)
    q.track_id = 2
    (s,) = sm.update([q], 20 / FPS)
    np.testing.assert_array_equal(s.body.xy, q.body.xy)
    np.testing.assert_array_equal(s.body.xyz, q.body.xyz)
    assert s.velocity is None
    # id 1 coming back after more than max_gap_s starts fresh too
    r = make_person(1.5, 3.0)
    r.track_id = 1
    (s,) = sm.update([r], 20 / FPS + 1.0)
    np.testing.assert_array_equal(s.body.xy, r.body.xy)
    # whereas within max_gap_s it is smoothed (the output differs from the input)
    r2 = make_person(1.6, 3.0)
    r2.track_id = 1
    (s,) = sm.update([r2], 20 / FPS + 1.0 + 1 / FPS)
    assert np.abs(s.body.xy - r2.body.xy).max() > 1.0


def test_untracked_pass_through_and_inputs_untouched():
    sm = PersonSmoother()
    rng = np.random.default_rng(3)
    for i in range(5):
        p = make_person(0.0, 3.0, noise_px=3.0, rng=rng)
        before = p.body.xy.copy()
        (s,) = sm.update([p], i / FPS)
        np.testing.assert_array_equal(s.body.xy, before)     # track 0: unsmoothed
        np.testing.assert_array_equal(p.body.xy, before)     # input untouched
        assert s.velocity is None and s.centroid is not None
    p.track_id = 4
    for i in range(5, 8):
        p2 = make_person(0.0, 3.0, noise_px=3.0, rng=rng)
        p2.track_id = 4
        before = p2.body.xy.copy()
        sm.update([p2], i / FPS)
        np.testing.assert_array_equal(p2.body.xy, before)


def test_invalid_3d_points_are_not_filtered_and_reset():
    ks = KeypointSmoother()
    base = make_person(0.0, 3.0).body
    for i in range(10):
        kp = base.copy()
        kp.xyz = kp.xyz + np.float32(0.1 * (i % 2))     # alternate: heavy smoothing expected
        out = ks.smooth(5, kp, i / FPS)
    assert abs(out.xyz[0, 0] - kp.xyz[0, 0]) > 0.01
    gap = base.copy()
    gap.xyz_valid[0] = False
    gap.xyz[0] = np.nan
    out = ks.smooth(5, gap, 10 / FPS)
    assert np.isnan(out.xyz[0]).all() and np.isfinite(out.xyz[1]).all()
    back = base.copy()
    back.xyz[0] += 0.5
    out = ks.smooth(5, back, 11 / FPS)
    np.testing.assert_array_equal(out.xyz[0], back.xyz[0])   # fresh start for that point
    assert abs(out.xyz[1, 0] - back.xyz[1, 0]) < 0.1 and not np.array_equal(out.xyz[1], back.xyz[1])


def test_duplicate_and_backwards_stamps():
    f = OneEuroFilter(1.0, 0.0)
    f(np.array([0.0]), 1.0)
    y1 = f(np.array([10.0]), 1.1)
    y_dup = f(np.array([50.0]), 1.1)       # duplicate stamp: previous output again
    np.testing.assert_array_equal(y_dup, y1)
    y_back = f(np.array([7.0]), 0.5)       # backwards: reset, pass through
    np.testing.assert_array_equal(y_back, [7.0])

    sm = PersonSmoother()
    for i in range(10):
        p = make_person(0.0 + 0.05 * i, 3.0)
        p.track_id = 1
        sm.update([p], 100 + i / FPS)
    q = make_person(2.0, 3.0)
    q.track_id = 1
    (s,) = sm.update([q], 5.0)              # bag loop
    np.testing.assert_array_equal(s.body.xy, q.body.xy)
    assert s.velocity is None


def test_hands_and_face_are_smoothed_per_track():
    sm = PersonSmoother()
    rng = np.random.default_rng(4)
    hand_xy = rng.uniform(100, 200, (21, 2))
    errs_raw, errs_out = [], []
    for i in range(40):
        p = make_person(0.0, 3.0)
        p.track_id = 9
        noisy = hand_xy + rng.normal(0, 2.0, hand_xy.shape)
        p.hands = [Hand(Keypoints("hand21", noisy, np.ones(21)), "left", 0.9)]
        (s,) = sm.update([p], i / FPS)
        if i >= 15:
            errs_raw.append(noisy - hand_xy)
            errs_out.append(s.hands[0].keypoints.xy - hand_xy)
        assert s.hands[0].handedness == "left"
        assert p.hands[0].keypoints.xy is not s.hands[0].keypoints.xy   # input untouched
    assert np.std(errs_out) < 0.6 * np.std(errs_raw)
    with pytest.raises(ValueError):
        SmootherConfig(min_cutoff_2d_hz=0.0)
