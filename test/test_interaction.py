"""Attention (looking at the robot, with hysteresis) and engagement (hri_engagement-like state
machine) on synthetic gaze sequences with asserted timings; gaze on real face photos."""
import math

import numpy as np
import pytest

from pose_perception.core.gaze import SOURCE_EYES, Gaze, angle_to_target_deg
from pose_perception.core.interaction import (AttentionConfig, Engagement, EngagementConfig,
                                              InteractionTracker, engagement_level)

FPS = 10.0


def gaze_at(angle_deg: float, distance_m: float = 1.0) -> Gaze:
    """A person at ``distance_m`` in front of the camera (optical frame) looking ``angle_deg``
    away from it (to the side)."""
    origin = np.array([0.0, 0.0, distance_m])
    a = math.radians(angle_deg)
    return Gaze(origin, np.array([math.sin(a), 0.0, -math.cos(a)]), 0.9, SOURCE_EYES)


def run(tracker, script, track_id=1, t0=0.0):
    """``script``: (seconds, angle or None, distance) segments; returns (t, interaction)."""
    out, i = [], 0
    for seconds, angle, dist in script:
        for _ in range(int(round(seconds * FPS))):
            t = round(t0 + i / FPS, 6)
            g = gaze_at(angle, dist) if angle is not None else None
            out.append((t, tracker.update([(track_id, g, np.array([0, 0, dist]))], t)[0]))
            i += 1
    return out


def first(seq, pred):
    return next((t for t, it in seq if pred(it)), None)


def test_gaze_angle_to_the_camera():
    assert angle_to_target_deg(gaze_at(0.0), np.zeros(3)) == pytest.approx(0.0, abs=1e-9)
    assert angle_to_target_deg(gaze_at(30.0), np.zeros(3)) == pytest.approx(30.0)


def test_looking_needs_time_and_has_hysteresis():
    tr = InteractionTracker(AttentionConfig(cone_deg=15, hysteresis_deg=5, min_look_s=0.2,
                                            min_away_s=0.3))
    seq = run(tr, [(1.0, 40.0, 1.0), (1.0, 5.0, 1.0), (1.0, 18.0, 1.0), (1.0, 40.0, 1.0)])
    start = first(seq, lambda it: it.looking)
    assert start == pytest.approx(1.0 + 0.2)        # within the cone from t=1.0, for 0.2 s
    # 18 degrees is outside the 15 degree cone but inside the hysteresis band: still looking
    assert all(it.looking for t, it in seq if 1.2 <= t < 3.0)
    stop = first([(t, it) for t, it in seq if t >= 3.0], lambda it: not it.looking)
    assert stop == pytest.approx(3.0 + 0.3)
    durations = [it.looking_duration_s for t, it in seq if 1.2 <= t < 3.0]
    assert durations[0] == pytest.approx(0.2) and durations[-1] == pytest.approx(1.9)
    # a glance shorter than min_look_s is no attention
    tr2 = InteractionTracker()
    seq = run(tr2, [(0.5, 40.0, 1.0), (0.1, 0.0, 1.0), (0.5, 40.0, 1.0)])
    assert not any(it.looking for _, it in seq)


def test_engagement_level_from_gaze_and_distance():
    e = EngagementConfig(field_deg=30, near_m=1.2, far_m=3.0)
    assert engagement_level(0.0, 1.0, e) == pytest.approx(1.0)
    assert engagement_level(15.0, 1.0, e) == pytest.approx(0.5)
    assert engagement_level(0.0, 2.1, e) == pytest.approx(0.5)
    assert engagement_level(40.0, 1.0, e) == 0.0 and engagement_level(0.0, 3.5, e) == 0.0
    assert engagement_level(math.nan, 1.0, e) == 0.0


def test_approach_and_look_then_look_away_then_leave():
    e = EngagementConfig(engaging_s=1.0, disengaging_s=2.0)
    tr = InteractionTracker(engagement=e)
    seq = run(tr, [(1.0, 0.0, 4.0),      # far away, looking: level 0
                   (2.0, 0.0, 1.0),      # approach and look: ENGAGING, then ENGAGED after 1 s
                   (3.0, 60.0, 1.0),     # look away: DISENGAGING, DISENGAGED after 2 s
                   (1.0, 0.0, 5.0)])     # look again from far: stays DISENGAGED
    states = {round(t, 1): it.engagement for t, it in seq}
    assert states[0.5] == Engagement.DISENGAGED
    assert states[1.0] == Engagement.ENGAGING
    assert first(seq, lambda it: it.engagement == Engagement.ENGAGED) == pytest.approx(2.0)
    assert states[3.0] == Engagement.DISENGAGING
    assert first([(t, it) for t, it in seq if t > 3.0],
                 lambda it: it.engagement == Engagement.DISENGAGED) == pytest.approx(5.0)
    assert states[6.5] == Engagement.DISENGAGED


def test_a_short_look_away_does_not_disengage():
    tr = InteractionTracker(engagement=EngagementConfig(engaging_s=1.0, disengaging_s=2.0))
    seq = run(tr, [(2.0, 0.0, 1.0), (1.0, 60.0, 1.0), (1.0, 0.0, 1.0)])
    after = [it.engagement for t, it in seq if t >= 2.0]
    assert Engagement.DISENGAGING in after and Engagement.DISENGAGED not in after
    assert seq[-1][1].engagement == Engagement.ENGAGED


def test_occlusion_makes_engagement_unknown_and_leaving_forgets():
    tr = InteractionTracker(engagement=EngagementConfig(unknown_after_s=1.0),
                            forget_after_s=2.0)
    seq = run(tr, [(2.0, 0.0, 1.0), (2.0, None, 1.0)])   # the face hidden for 2 s
    hidden = [(t, it.engagement) for t, it in seq if t >= 2.0]
    # the last gaze was at t=1.9: the state holds for unknown_after_s, then UNKNOWN
    assert all(s == Engagement.ENGAGED for t, s in hidden if t <= 2.9)
    assert first([(t, it) for t, it in seq if t >= 2.0],
                 lambda it: it.engagement == Engagement.UNKNOWN) == pytest.approx(3.0)
    assert all(math.isnan(it.looking_angle_deg) and not it.looking
               for t, it in seq if t >= 2.4)
    # the person leaves (no longer in the data): forgotten after forget_after_s
    tr.update([], 10.0)
    assert tr._states == {}


def test_untracked_people_are_skipped():
    assert InteractionTracker().update([(0, gaze_at(0.0), None)], 0.0) == []


# ---------------------------------------------------------------- real photos
def test_gaze_on_real_face_photos(shared_data):
    """Frontal faces looking at the camera are 'looking'; faces turned away are not. A photo is
    shown for 0.5 s (attention needs min_look_s); the camera model is a 60-degree pinhole."""
    from model_env import require_models
    require_models()
    from pose_perception.core.camera import CameraModel
    from pose_perception.apps.eval_body_face import read_rgb
    from pose_perception.core.perception import Perception, PerceptionConfig
    from pose_perception.provision import find_test_image
    photos = {"grace_hopper (frontal, looking at the camera)": (find_test_image(), True)}
    photos["300w/indoor_029 (looking aside)"] = (
        shared_data / "face_dev" / "300w" / "indoor_029.png", False)
    photos["aic/fa436c91 (man seen from behind-side)"] = (
        shared_data / "people_dev" / "aic" / "fa436c914fe4a8ec1ec5474af4d3820b84d17561.jpg",
        None)
    per = Perception(PerceptionConfig())
    seen_turned = 0
    try:
        for name, (path, looking) in photos.items():
            rgb = read_rgb(path)
            h, w = rgb.shape[:2]
            cam = CameraModel(w, h, [[w * 0.87, 0, w / 2], [0, w * 0.87, h / 2], [0, 0, 1]])
            per.reset()
            for k in range(6):
                res = per.process(rgb, k * 0.1, np.full((h, w), np.nan, np.float32), cam)
            for it in res.interactions:
                if it.gaze is None:
                    continue
                turned = angle_to_target_deg(
                    Gaze(it.gaze.origin, _head_forward(res, it.track_id), 0, ""), np.zeros(3))
                print(f"{name}: id {it.track_id} gaze from {it.gaze.source}, "
                      f"{it.looking_angle_deg:.1f} deg from the camera, head turned "
                      f"{turned:.1f} deg, looking={it.looking}")
                if looking is not None:
                    assert it.looking == looking, name
                if turned > 45.0:
                    seen_turned += 1
                    assert not it.looking, name
    finally:
        per.close()
    assert seen_turned >= 1


def _head_forward(res, track_id):
    from transforms3d.quaternions import quat2mat
    for f in res.faces:
        if f.track_id == track_id and f.head_pose is not None:
            q = f.head_pose.orientation
            return quat2mat([q[3], q[0], q[1], q[2]])[:, 0]
    return np.array([0.0, 0.0, 1.0])


def _eyes(offset_px=0.0, width=30.0, lid_gap=8.0):
    """Both eyes of a face looking at the camera, the irises moved ``offset_px`` to the image
    right (the person's left for a face facing the camera)."""
    from pose_perception.core.iris import EyeLandmarks
    pts = []
    for cx in (200.0, 260.0):
        pts.append([[cx - width / 2, 100.0], [cx + width / 2, 100.0],
                    [cx, 100.0 - lid_gap / 2], [cx, 100.0 + lid_gap / 2]])
    pts = np.array(pts, np.float32)
    iris = np.zeros((2, 5, 2), np.float32)
    iris[:, 0] = (pts[:, 0] + pts[:, 1]) / 2 + [offset_px, 0.0]
    return EyeLandmarks(iris, np.zeros((2, 71, 2), np.float32),
                        np.full(2, width, np.float32), pts)


def _facing_camera():
    from transforms3d.quaternions import mat2quat

    from pose_perception.core.types import HeadPose
    R = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float).T     # face x = optical -z
    w, x, y, z = mat2quat(R)
    return HeadPose(np.array([0.0, 0.0, 1.0]), np.array([x, y, z, w]))


def test_eye_yaw_turns_the_gaze_and_small_or_closed_eyes_fall_back_to_the_head():
    from pose_perception.core.gaze import (EYE_WIDTH_PER_RADIUS, SOURCE_HEAD, GazeConfig,
                                           estimate_gaze)
    head = _facing_camera()
    g = estimate_gaze(head, _eyes(0.0))
    assert g.source == SOURCE_EYES
    assert angle_to_target_deg(g, np.zeros(3)) == pytest.approx(0.0, abs=1e-6)
    r = 30.0 / EYE_WIDTH_PER_RADIUS
    g = estimate_gaze(head, _eyes(r * math.sin(math.radians(20.0))))
    assert g.eye_yaw_deg == pytest.approx(20.0, abs=1e-3)     # to the person's left
    assert g.direction[0] > 0
    assert angle_to_target_deg(g, np.zeros(3)) == pytest.approx(20.0, abs=1e-3)
    small = estimate_gaze(head, _eyes(5.0, width=6.0), GazeConfig(min_eye_px=10.0))
    closed = estimate_gaze(head, _eyes(5.0, lid_gap=1.0))
    for g in (small, closed, estimate_gaze(head, None)):
        assert g.source == SOURCE_HEAD and g.direction == pytest.approx([0, 0, -1])
    assert estimate_gaze(None, _eyes()) is None
