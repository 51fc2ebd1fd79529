"""Body language per tracked person (core/body_language.py, and Perception filling
``PersonInteraction.body``): posture, body gestures, hand gestures, pointing and falls combined
per track id, with their events and timings; the RealSense two-people frames give one sitting
and one standing person through the whole pipeline."""
import numpy as np
import pytest
from model_env import require_models
from pointing_scene import CAMERA as POINTING_CAMERA
from pointing_scene import Scene as DepthScene
from pointing_scene import body_and_hands, person_spheres, pointing_person

from pose_perception.core.body_language import BodyLanguageConfig, BodyLanguageTracker
from pose_perception.core.hand_gestures import HAND_GESTURES
from pose_perception.core.posture import Posture
from pose_perception.core.types import FOUND_BY_BOX, Hand, Keypoints, Person
from pose_perception.sources.kinematic_body import ARM_DOWN, ARM_RAISED, Scene, body_points, rot

FPS = 30.0


def _person(kp, track_id=1, hands=()):
    torso = kp.xyz[[11, 12, 23, 24]].mean(axis=0)
    return Person(kp, np.array([0.0, 0.0, 100.0, 200.0]), 0.9, track_id=track_id,
                  hands=list(hands), centroid=torso)


def _hand(name, side="left", p=0.9):
    probs = np.full(len(HAND_GESTURES), (1.0 - p) / (len(HAND_GESTURES) - 1), np.float32)
    probs[HAND_GESTURES.index(name)] = p
    return Hand(Keypoints("hand21", np.zeros((21, 2)), np.full(21, 0.9)), side, 0.95,
                gesture=probs)


def _run(tracker, frames, up, **kw):
    """frames: [(t, [Person])] -> [(t, {track_id: BodyLanguage}, events)]."""
    return [(t, *tracker.update(people, t, up, **kw)) for t, people in frames]


def _names(body):
    return {(g.name, g.side) for g in body.gestures}


def test_raised_hand_and_thumb_up_with_their_events_and_timings():
    """Arms down until 1 s, then the left arm raised with a thumb up until 2.5 s, then down.
    The body gesture starts after its on-time (0.3 s), the hand gesture after hand_on_s (0.2 s);
    each is reported once as started and once as ended; the person stands throughout."""
    scene = Scene()
    cfg = BodyLanguageConfig()
    frames = []
    for t in np.arange(0.0, 4.0, 1.0 / FPS):
        up_now = 1.0 <= t < 2.5
        kp = scene.keypoints(scene.world_points(body_points(
            arms=(ARM_RAISED if up_now else ARM_DOWN, ARM_DOWN))))
        hands = [_hand("thumb_up" if up_now else "none")]
        frames.append((round(float(t), 6), [_person(kp, hands=hands)]))
    out = _run(BodyLanguageTracker(cfg), frames, scene.up)
    raised = [t for t, bodies, _ in out if ("left_hand_raised", "left") in _names(bodies[1])]
    thumb = [t for t, bodies, _ in out if ("thumb_up", "left") in _names(bodies[1])]
    assert raised[0] == pytest.approx(1.3, abs=1.5 / FPS) and raised[-1] < 3.05
    assert thumb[0] == pytest.approx(1.0 + cfg.hand_on_s, abs=1.5 / FPS)
    # last frame with it: the off-time after the last thumb-up frame (2.5 - 1/FPS), less one
    assert thumb[-1] == pytest.approx(2.5 + cfg.hand_off_s - 2.0 / FPS, abs=0.5 / FPS)
    events = [(round(t, 2), e.kind, e.gesture.name) for t, _, evs in out for e in evs]
    started = [e for e in events if e[1] == "gesture_started"]
    ended = [e for e in events if e[1] == "gesture_ended"]
    assert sorted(n for _, _, n in started) == ["left_hand_raised", "thumb_up"]
    assert sorted(n for _, _, n in ended) == ["left_hand_raised", "thumb_up"]
    # the started events carry when the gesture began
    first = {e.gesture.name: e.gesture.start_s for _, _, evs in out for e in evs
             if e.kind == "gesture_started"}
    assert first["left_hand_raised"] == pytest.approx(1.0, abs=1.5 / FPS)
    assert first["thumb_up"] == pytest.approx(1.0, abs=1.5 / FPS)
    assert {b[1].posture for _, b, _ in out} == {Posture.STANDING}
    print("events:", events)


def test_a_fall_is_an_event_and_ends_lying():
    scene = Scene()
    frames = []
    for t in np.arange(0.0, 6.0, 1.0 / FPS):
        s = float(np.clip((t - 2.0) / 0.6, 0.0, 1.0)) ** 2
        kp = scene.keypoints(scene.world_points(body_points(), turn=rot((1, 0, 0), -90.0 * s)))
        frames.append((round(float(t), 6), [_person(kp, track_id=4)]))
    out = _run(BodyLanguageTracker(), frames, scene.up)
    falls = [e for _, _, evs in out for e in evs if e.kind == "fall"]
    assert len(falls) == 1
    f = falls[0]
    assert f.track_id == 4 and 2.0 < f.stamp_s <= 2.6 and f.fall_drop_m > 0.6
    assert f.fall_speed_mps > 1.0 and f.position is not None
    assert out[-1][1][4].posture == Posture.LYING


def test_pointing_becomes_a_gesture_with_a_target_on_the_box():
    """A person pointing at a box (synthetic RGB-D scene): after the on-time, a 'pointing'
    gesture on the left arm, the target on the box within 10 cm, the ray drawn in pixels."""
    target = np.array([0.7, 0.97, 3.3])
    body_xyz, hand_xyz = pointing_person((-1.0, 0.3, 3.5), target)
    depth = DepthScene(boxes=[((0.7, 0.72, 3.1), (1.1, 1.22, 3.5))],
                       spheres=person_spheres(body_xyz, hand_xyz)).render(POINTING_CAMERA)
    body, hands = body_and_hands(body_xyz, hand_xyz)
    tracker = BodyLanguageTracker()
    out = []
    for i in range(8):
        t = i / 10.0
        bodies, events = tracker.update([_person(body, 7, hands)], t, (0.0, -1.0, 0.0), depth,
                                        POINTING_CAMERA)
        out.append((t, bodies[7], events))
    first = [t for t, b, _ in out if b.pointing is not None][0]
    assert 0.25 <= first <= 0.45
    last = out[-1][1]
    assert ("pointing", "left") in _names(last)
    assert np.linalg.norm(last.pointing.target - target) < 0.10
    assert last.pointing_px is not None and np.all(np.isfinite(last.pointing_px))
    px = POINTING_CAMERA.project(last.pointing.target[None])[0]
    assert np.allclose(last.pointing_px[1], px, atol=1e-6)
    kinds = [(e.kind, e.gesture.name) for _, _, evs in out for e in evs]
    assert kinds.count(("gesture_started", "pointing")) == 1


def test_box_only_and_untracked_people_get_nothing_and_bad_up_falls_back():
    scene = Scene()
    kp = scene.keypoints(scene.world_points(body_points()))
    box_only = _person(kp, track_id=3)
    box_only.found_by = FOUND_BY_BOX
    bodies, events = BodyLanguageTracker().update(
        [box_only, _person(kp, track_id=0), _person(kp, track_id=5)], 1.0, (0.0, 0.0, 0.0))
    assert set(bodies) == {5} and events == []
    assert bodies[5].posture == Posture.STANDING      # a zero 'up' is taken as a level camera


def test_config_is_checked():
    with pytest.raises(ValueError, match="hand_min_probability"):
        BodyLanguageConfig(hand_min_probability=0.0)
    with pytest.raises(ValueError):
        BodyLanguageConfig(hand_off_s=-1.0)


def test_perception_gives_one_sitting_and_one_standing_person_on_realsense(shared_data):
    """The whole pipeline on the RealSense two-people frames: each interaction carries its
    body language; the person on the sofa sits and the other stands in every frame after the
    first; with enable_body_language false nothing is added."""
    require_models()
    from pose_perception.core.perception import Perception, PerceptionConfig
    from pose_perception.sources.sample import load_source
    seq = load_source(str(shared_data / "rgbd_dev" / "realsense_two_people"))
    per = Perception(PerceptionConfig.from_dict({"keypoints": {"providers": ["cpu"]}}))
    off = Perception(PerceptionConfig.from_dict({"keypoints": {"providers": ["cpu"]},
                                                 "enable_body_language": False}))
    try:
        postures = []
        for i, f in enumerate(seq.frames):
            stamp = 100.0 + i / 30.0
            r = per.process(f.rgb, stamp, f.depth_m, seq.camera(f))
            assert "body_language" in r.timings_ms
            postures.append(sorted(it.body.posture.name for it in r.interactions))
            r_off = off.process(f.rgb, stamp, f.depth_m, seq.camera(f))
            assert all(it.body is None for it in r_off.interactions) and r_off.events == []
        print("postures per frame:", postures)
        assert all(p == ["SITTING", "STANDING"] for p in postures)
    finally:
        per.close()
        off.close()


def test_demo_script_reports_what_is_acted():
    """The demo's body-language script (a synthetic skeleton): each acted gesture, the chair and
    the fall are reported in their segment, and nothing is reported while standing still."""
    from pose_perception.apps.demo_body_language import acted_vs_seen, run_script
    rows = {r["acted"]: r for r in acted_vs_seen(run_script())}
    assert rows["standing, arms down"]["gestures"] == []
    assert rows["standing, arms down"]["postures"] == ["standing"]
    for acted, expected in (("left hand raised", "left hand raised"),
                            ("waving (right hand, 2 Hz)", "waving"),
                            ("both hands raised", "both hands raised"),
                            ("arms crossed", "arms crossed"),
                            ("pointing to the side (left arm)", "left pointing")):
        assert expected in rows[acted]["gestures"], acted
    assert "sitting" in rows["sitting on a chair"]["postures"]
    assert any(e.endswith(" fall") for e in rows["falling backwards"]["events"])
    assert "lying" in rows["lying on the floor"]["postures"]
    assert rows["lying on the floor"]["gestures"] == []


def test_custom_model_layouts_are_read_through_their_coco17_joints():
    """A COCO-17 body (a custom keypoint model) gets its posture and arm gestures from its
    joints in their BlazePose places; a layout without a COCO-17 view gets nothing."""
    from pose_perception.core.body_language import as_blazepose33
    from pose_perception.core.layouts import BLAZEPOSE33_TO_COCO17
    scene = Scene()
    tracker = BodyLanguageTracker()
    for i in range(20):
        kp = scene.keypoints(scene.world_points(body_points(arms=(ARM_RAISED, ARM_DOWN))))
        coco = kp.remap("coco17", BLAZEPOSE33_TO_COCO17)
        person = _person(kp, track_id=2)
        person.body = coco
        bodies, _ = tracker.update([person], i / 10.0, scene.up)
    assert bodies[2].posture == Posture.STANDING
    assert ("left_hand_raised", "left") in _names(bodies[2])
    back = as_blazepose33(coco)
    assert back.layout == "blazepose33" and not back.xyz_valid[19] and back.xyz_valid[15]
    assert as_blazepose33(Keypoints("hand21", np.zeros((21, 2)), np.ones(21))) is None
