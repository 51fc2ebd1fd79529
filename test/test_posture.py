"""Posture and falls (core.posture): synthetic skeletons from a kinematic model seen by level,
tilted and rolled cameras, sequences over time (hysteresis, falls), and real frames."""
import json
import math

import numpy as np
import pytest

from pose_perception.core.body_frame import LEVEL_CAMERA_UP
from pose_perception.core.perception import dataclass_from_dict
from pose_perception.core.posture import (Posture, PostureConfig, PostureState,
                                          PostureTracker, classify_posture)
from pose_perception.core.types import Keypoints
from pose_perception.sources.kinematic_body import (CAMERAS, KNEELING, LYING_TURN, SITTING,
                                                    SQUATTING, Camera, Scene, body_points, rot)


# (body_points arguments, world_points arguments, expected)
CASES = {
    "standing": ({}, {}, Posture.STANDING),
    "bending_over": (dict(trunk_deg=80.0), {}, Posture.STANDING),
    "chair": (SITTING, dict(hip_height=0.48), Posture.SITTING),
    "chair_leaning": (dict(SITTING, trunk_deg=35.0), dict(hip_height=0.48), Posture.SITTING),
    "floor_legs_out": (dict(trunk_deg=-10.0, hip_deg=(90.0, 90.0)), {}, Posture.SITTING),
    "floor_reclined": (dict(trunk_deg=-60.0, hip_deg=(120.0, 120.0), knee_deg=(100.0, 100.0)),
                       {}, Posture.SITTING),
    "squatting": (SQUATTING, {}, Posture.CROUCHING),
    "kneeling": (KNEELING, {}, Posture.CROUCHING),
    "lying_on_back": ({}, dict(turn=LYING_TURN), Posture.LYING),
    "lying_knees_up": (dict(hip_deg=(45.0, 45.0), knee_deg=(90.0, 90.0)),
                       dict(turn=LYING_TURN), Posture.LYING),
    "curled_on_side": (dict(trunk_deg=20.0, hip_deg=(90.0, 90.0), knee_deg=(90.0, 90.0)),
                       dict(turn=rot((0, 0, 1), 90.0)), Posture.LYING),
}


def _keypoints(scene, case, **place):
    body_kw, world_kw, _ = CASES[case]
    return scene.keypoints(scene.world_points(body_points(**body_kw), **{**world_kw, **place}))


@pytest.mark.parametrize("case", sorted(CASES))
def test_postures_are_the_same_from_any_camera_with_its_up(case):
    results = {}
    for name, cam in CAMERAS.items():
        scene = Scene(cam)
        kp = _keypoints(scene, case, facing_deg=150.0)
        results[name] = classify_posture(kp.xyz, kp.xyz_valid, scene.up)
    print(case, results)
    assert {p for p, _ in results.values()} == {CASES[case][2]}
    confs = [c for _, c in results.values()]
    assert min(confs) >= 0.7
    assert max(confs) - min(confs) < 1e-6


def test_up_matters_a_rolled_camera_without_its_up_is_wrong():
    scene = Scene(Camera(roll_deg=90.0))
    kp = _keypoints(scene, "standing")
    assert classify_posture(kp.xyz, kp.xyz_valid, scene.up)[0] == Posture.STANDING
    assert classify_posture(kp.xyz, kp.xyz_valid, LEVEL_CAMERA_UP)[0] == Posture.LYING


def test_missing_joints():
    scene = Scene()
    cfg = PostureConfig()
    for case, expected in (("standing", Posture.STANDING), ("chair", Posture.SITTING),
                           ("squatting", Posture.SITTING)):   # no feet: a squat looks seated
        kp = _keypoints(scene, case)
        full = classify_posture(kp.xyz, kp.xyz_valid, scene.up)
        valid = kp.xyz_valid.copy()
        valid[27:] = False                                      # no ankles, heels, toes
        part = classify_posture(kp.xyz, valid, scene.up)
        assert part[0] == expected
        if full[0] == expected:
            assert part[1] == pytest.approx(full[1] * cfg.partial_scale)
    # no knees: upright is unknown, flat is still lying
    for case, expected in (("standing", Posture.UNKNOWN), ("lying_on_back", Posture.LYING)):
        kp = _keypoints(scene, case)
        valid = kp.xyz_valid.copy()
        valid[25:] = False
        assert classify_posture(kp.xyz, valid, scene.up)[0] == expected
    kp = _keypoints(scene, "standing")
    valid = kp.xyz_valid.copy()
    valid[23] = False                                           # one hip: no trunk
    assert classify_posture(kp.xyz, valid, scene.up) == (Posture.UNKNOWN, 0.0)
    with pytest.raises(ValueError):
        classify_posture(kp.xyz, kp.xyz_valid, (0.0, 0.0, 0.0))


def test_model_world_is_used_without_depth():
    scene = Scene(Camera(pitch_deg=20.0))
    for case in ("chair", "lying_on_back"):
        kp = _keypoints(scene, case)
        hip = kp.xyz[[23, 24]].mean(axis=0)
        world = kp.xyz - hip                     # hip-centred, camera axes, like Person.world
        flat = Keypoints("blazepose33", kp.xy, kp.score)          # 2D only
        tracker = PostureTracker()
        state, fall = tracker.update(1, flat, 0.0, scene.up)
        assert state.posture == Posture.UNKNOWN and fall is None
        state, fall = tracker.update(2, flat, 0.0, scene.up, world=world)
        expected, conf = classify_posture(kp.xyz, kp.xyz_valid, scene.up)
        assert state.posture == expected == CASES[case][2]
        assert state.confidence == pytest.approx(conf * PostureConfig().model_confidence_scale)


# ------------------------------------------------------------------------------ over time
FPS = 30.0


def _run(tracker, frames, track_id=1):
    """frames: (t, keypoints, up) -> [(t, state, event)]."""
    return [(t, *tracker.update(track_id, kp, t, up)) for t, kp, up in frames]


def _sit_down(scene, start, duration, end=6.0):
    """Standing, then sitting down onto a 0.48 m chair over ``duration`` seconds."""
    frames = []
    for t in np.arange(0.0, end, 1.0 / FPS):
        s = float(np.clip((t - start) / duration, 0.0, 1.0))
        body = body_points(trunk_deg=20.0 * math.sin(math.pi * s), hip_deg=(90 * s, 90 * s),
                           knee_deg=(90 * s, 90 * s))
        stand_h = scene.world_points(body)[[23, 24], 2].mean()
        hip_h = stand_h + (0.48 - stand_h) * s if s < 1.0 else 0.48
        frames.append((float(t), scene.keypoints(scene.world_points(body, hip_height=hip_h)),
                       scene.up))
    return frames


@pytest.mark.parametrize("camera", ["level", "rolled"])
def test_sitting_down_switches_after_switch_s_and_is_no_fall(camera):
    scene = Scene(CAMERAS[camera])
    cfg = PostureConfig()
    frames = _sit_down(scene, start=2.0, duration=0.7)       # quick: about 0.8 m/s
    raw = [(t, classify_posture(kp.xyz, kp.xyz_valid, up)[0]) for t, kp, up in frames]
    first_sit = min(t for t, p in raw if p == Posture.SITTING)
    assert 2.0 < first_sit < 2.7
    out = _run(PostureTracker(cfg), frames)
    assert all(ev is None for _, _, ev in out)
    switched = [t for t, st, _ in out if st.posture == Posture.SITTING]
    assert switched[0] == pytest.approx(first_sit + cfg.switch_s, abs=1.5 / FPS)
    assert all(st.posture == Posture.STANDING for t, st, _ in out if t < switched[0])
    last = out[-1][1]
    assert last.posture == Posture.SITTING and last.confidence > 0.9
    assert last.since_s == pytest.approx(first_sit, abs=1e-6)


def test_unknown_after_unknown_after_s_and_left_at_once():
    scene = Scene()
    cfg = PostureConfig()
    stand = _keypoints(scene, "standing")
    hidden = stand.copy()
    hidden.xyz_valid[11:] = False                              # only the head seen
    frames = [(i / FPS, hidden if 30 <= i < 120 else stand, scene.up) for i in range(150)]
    out = _run(PostureTracker(cfg), frames)
    unknown = [t for t, st, _ in out if st.posture == Posture.UNKNOWN]
    assert unknown[0] == pytest.approx(1.0 + cfg.unknown_after_s, abs=0.5 / FPS)
    assert unknown[-1] == pytest.approx(4.0 - 1.0 / FPS, abs=0.5 / FPS)
    assert out[120][1] == PostureState(Posture.STANDING, 1.0, 4.0)


def test_single_odd_frames_do_not_flicker():
    scene = Scene()
    stand = _keypoints(scene, "standing")
    lying = _keypoints(scene, "lying_on_back")
    frames = [(i / FPS, lying if i % 5 == 4 else stand, scene.up) for i in range(90)]
    out = _run(PostureTracker(), frames)
    assert all(st.posture == Posture.STANDING for _, st, _ in out)
    assert 0.6 < out[-1][1].confidence < 0.95                  # the odd frames lower it


def _fall(scene, start, duration=0.6, end=8.0, get_up=None):
    """Standing, toppling backwards to the floor over ``duration`` (accelerating), lying; with
    ``get_up``: standing again from then on."""
    frames = []
    for t in np.arange(0.0, end, 1.0 / FPS):
        s = float(np.clip((t - start) / duration, 0.0, 1.0)) ** 2
        if get_up is not None and t >= get_up:
            s = 0.0
        turn = rot((1, 0, 0), -90.0 * s)
        frames.append((float(t), scene.keypoints(scene.world_points(body_points(), turn=turn)),
                       scene.up))
    return frames


@pytest.mark.parametrize("camera", ["level", "high"])
def test_a_fall_gives_one_event_once_lying(camera):
    scene = Scene(CAMERAS[camera])
    cfg = PostureConfig()
    out = _run(PostureTracker(cfg), _fall(scene, start=2.0))
    events = [(t, ev) for t, _, ev in out if ev is not None]
    assert len(events) == 1
    t_ev, ev = events[0]
    lying = [t for t, st, _ in out if st.posture == Posture.LYING]
    assert t_ev == lying[0]                                   # reported once LYING
    assert 2.5 < t_ev < 2.6 + cfg.switch_s + 0.2
    assert ev.track_id == 1 and 2.0 < ev.stamp_s <= 2.6        # when the drop was seen
    assert 0.8 < ev.drop_m < 1.2 and ev.speed_mps > 1.5
    print(f"{camera}: event at {t_ev:.3f} s: {ev}")


def test_falling_again_after_getting_up_and_slow_lying_down():
    scene = Scene()
    out = _run(PostureTracker(), _fall(scene, start=1.0, end=9.0, get_up=4.0)
               + [(t + 9.0, kp, up) for t, kp, up in _fall(scene, start=1.0, end=5.0)])
    stamps = [ev.stamp_s for _, _, ev in out if ev is not None]
    assert len(stamps) == 2 and 1.0 < stamps[0] <= 1.6 and 10.0 < stamps[1] <= 10.6
    # lying down over 4 s: lying, but no fall
    out = _run(PostureTracker(), _fall(scene, start=1.0, duration=4.0, end=10.0))
    assert out[-1][1].posture == Posture.LYING
    assert all(ev is None for _, _, ev in out)


def test_model_world_gives_no_falls_and_tracks_expire():
    scene = Scene()
    cfg = PostureConfig(forget_after_s=1.0)
    tracker = PostureTracker(cfg)
    for t, kp, up in _fall(scene, start=1.0, end=5.0):
        world = kp.xyz - kp.xyz[[23, 24]].mean(axis=0)
        st, ev = tracker.update(1, Keypoints("blazepose33", kp.xy, kp.score), t, up,
                                world=world)
        assert ev is None                  # no absolute height: no fall from the model's 3D
    assert st.posture == Posture.LYING
    stand = _keypoints(scene, "standing")
    st, _ = tracker.update(2, stand, 5.5, scene.up)
    st, _ = tracker.update(1, stand, 5.5, scene.up)       # 1 still known: stays LYING
    assert st.posture == Posture.LYING
    st, _ = tracker.update(1, stand, 7.0, scene.up)       # gone 1.5 s: a new track
    assert st.posture == Posture.STANDING and st.since_s == 7.0
    tracker.forget([1])
    st, _ = tracker.update(2, _keypoints(scene, "chair", hip_height=0.48), 7.1, scene.up)
    assert st.posture == Posture.SITTING and st.since_s == 7.1


def test_config_validation():
    assert dataclass_from_dict(PostureConfig, {"switch_s": 1.0}).switch_s == 1.0
    for bad in ({"min_score": 0.0}, {"switch_s": -1.0}, {"fall_drop_m": 0.0},
                {"speed_span_s": 2.0}, {"min_joint_score": 1.0}):
        with pytest.raises(ValueError):
            dataclass_from_dict(PostureConfig, bad)


# ---------------------------------------------------------------------------- real frames
def _h36m_up_from_standing_ground_truth(frames):
    """Camera 54138969's up from S1's standing ground truth (ankles -> thorax), to check the
    result does not hinge on the level-camera assumption (the camera looks ~12 degrees down)."""
    gt = np.asarray(next(f for f in frames if "S1_" in f["image"])["joints_3d_camera_m"])
    v = gt[8] - (gt[3] + gt[6]) / 2.0
    return v / np.linalg.norm(v)


# BlazePose-33 index <- Human3.6M-17 index for the joints the rules use (nose <- head)
H36M_TO_BLAZEPOSE = {0: 10, 11: 11, 12: 14, 13: 12, 14: 15, 15: 13, 16: 16, 23: 4, 24: 1,
                     25: 5, 26: 2, 27: 6, 28: 3}


def test_h36m_ground_truth_3d(shared_data):
    """The rules on the true 3D joints (no models needed), level and tilted up."""
    data = json.loads((shared_data / "h36m_dev" / "h36m_3d.json").read_text())
    ups = (LEVEL_CAMERA_UP, _h36m_up_from_standing_ground_truth(data["frames"]))
    for fr in data["frames"]:
        gt = np.asarray(fr["joints_3d_camera_m"])
        xyz, valid = np.full((33, 3), np.nan), np.zeros(33, bool)
        for b, h in H36M_TO_BLAZEPOSE.items():
            xyz[b], valid[b] = gt[h], True
        want = Posture.SITTING if "SittingDown" in fr["image"] else Posture.STANDING
        for up in ups:
            posture, conf = classify_posture(xyz, valid, up)
            print(fr["image"], np.round(up, 3), posture.name, round(conf, 2))
            assert posture == want and conf >= 0.7


@pytest.mark.models
def test_h36m_sitting_and_standing(shared_data):
    import cv2
    from model_env import require_models
    from pose_perception.core.perception import Perception, PerceptionConfig
    require_models()
    data = json.loads((shared_data / "h36m_dev" / "h36m_3d.json").read_text())
    perception = Perception(PerceptionConfig.from_dict({"keypoints": {"providers": ["cpu"]}}))
    expected = {"S5_SittingDown": Posture.SITTING, "S1_Directions": Posture.STANDING}
    ups = {"level": LEVEL_CAMERA_UP, "from_gt": _h36m_up_from_standing_ground_truth(
        data["frames"])}
    for fr in data["frames"]:
        want = next(v for k, v in expected.items() if k in fr["image"])
        img = cv2.imread(str(shared_data / "h36m_dev" / fr["image"]), cv2.IMREAD_COLOR)
        perception.reset()
        result = perception.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), 0.0)
        people = [p for p in result.persons if not p.box_only]
        assert len(people) == 1
        p = people[0]
        assert p.body.xyz is None or not p.body.xyz_valid.any()   # no depth: the model's 3D
        for name, up in ups.items():
            state, _ = PostureTracker().update(1, p.body, 0.0, up, world=p.world)
            print(f"{fr['image']} up {name} {np.round(up, 3)}: {state.posture.name} "
                  f"{state.confidence:.2f}")
            assert state.posture == want
            assert state.confidence >= 0.5


@pytest.mark.models
def test_realsense_one_standing_one_sitting(shared_data):
    from model_env import require_models
    from pose_perception.core.camera import CameraModel
    from pose_perception.core.perception import Perception, PerceptionConfig
    from pose_perception.sources.rgbd_folder import load_rgbd_folder
    require_models()
    frames = load_rgbd_folder(shared_data / "rgbd_dev" / "realsense_two_people")
    cam = CameraModel.from_camera_info_dict(frames[0].camera_info)
    perception = Perception(PerceptionConfig.from_dict({"keypoints": {"providers": ["cpu"]}}))
    tracker = PostureTracker()
    raw_ok = tracked_ok = 0
    for f in frames:
        result = perception.process(f.rgb, f.stamp_s, f.depth_m, cam)
        assert len(result.persons) == 2
        raw, tracked = {}, {}
        for p in result.persons:
            side = "left" if float(np.nanmedian(p.body.xy[:, 0])) < 350 else "right"
            raw[side] = classify_posture(p.body.xyz, p.body.xyz_valid, LEVEL_CAMERA_UP)
            state, fall = tracker.update(p.track_id, p.body, f.stamp_s, LEVEL_CAMERA_UP)
            assert fall is None
            tracked[side] = (state.posture, state.confidence)
        print(f"{f.stamp_s:.3f}: " + ", ".join(
            f"{s} raw {raw[s][0].name} {raw[s][1]:.2f} tracked {tracked[s][0].name} "
            f"{tracked[s][1]:.2f}" for s in sorted(raw)))
        want = {"left": Posture.SITTING, "right": Posture.STANDING}   # sofa left of the seam
        raw_ok += {s: r[0] for s, r in raw.items()} == want
        tracked_ok += {s: r[0] for s, r in tracked.items()} == want
    assert raw_ok >= len(frames) - 1
    assert tracked_ok == len(frames)


@pytest.mark.parametrize("drop, duration, expected", [
    (0.9, 0.5, True),          # 1.8 m/s
    (0.45, 0.2, False),        # fast but too small (sitting down hard)
    (0.9, 2.0, False),         # large but slow (0.45 m/s, lowering oneself)
])
def test_fall_detector_thresholds(drop, duration, expected):
    from pose_perception.core.falls import FallDetector
    det = FallDetector(7)
    events = []
    for i in range(int(8 * FPS)):
        t = i / FPS
        h = 1.2 - drop * float(np.clip((t - 1.0) / duration, 0.0, 1.0))
        lying = t >= 1.0 + duration + 0.5
        ev = det.update(h, t, lying)
        if ev is not None:
            events.append((t, ev))
    if not expected:
        assert events == []
        return
    assert len(events) == 1
    t, ev = events[0]
    assert t == pytest.approx(1.0 + duration + 0.5, abs=1.0 / FPS)
    assert ev.track_id == 7 and 1.0 < ev.stamp_s <= 1.0 + duration + 1e-6
    assert ev.drop_m == pytest.approx(drop, abs=1e-6)
    assert ev.speed_mps == pytest.approx(drop / duration, rel=0.05)


@pytest.mark.parametrize("case", ["standing", "chair", "squatting", "lying_on_back"])
def test_depth_noise_neither_flickers_nor_falls(case):
    """3 cm of independent noise per joint (a far, noisy depth camera) for 5 s at 30 Hz."""
    scene = Scene(CAMERAS["pitched"])
    kp = _keypoints(scene, case)
    rng = np.random.default_rng(1)
    frames = []
    for i in range(int(5 * FPS)):
        k = kp.copy()
        k.xyz += rng.normal(0.0, 0.03, k.xyz.shape).astype(np.float32)
        frames.append((i / FPS, k, scene.up))
    out = _run(PostureTracker(), frames)
    assert {st.posture for _, st, _ in out} == {CASES[case][2]}
    assert all(ev is None for _, _, ev in out)
