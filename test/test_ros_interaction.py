"""people/interaction: the per-person attention/engagement message of pose_node (conversion,
markers, and the node publishing it with the attention frame from TF)."""
import math

import numpy as np
import pytest

from ros_env import require_ros

pytestmark = pytest.mark.ros


def _interaction(track_id=3, looking=True, state=3):
    from pose_perception.core.gaze import SOURCE_EYES, Gaze
    from pose_perception.core.interaction import Engagement, PersonInteraction
    g = Gaze(np.array([0.1, -0.2, 1.5]), np.array([0.0, 0.0, -1.0]), 0.8, SOURCE_EYES)
    return PersonInteraction(track_id, g, looking, 4.0, 1.5, Engagement(state), 0.9, 1.52)


def test_interaction_to_msg_fields_and_transform():
    require_ros()
    from pose_perception.core.interaction import Engagement, PersonInteraction
    from pose_perception.msg import PersonInteraction as Msg
    from pose_perception.ros.conversions import interaction_to_msg
    m = interaction_to_msg(_interaction())
    assert m.track_id == 3 and m.gaze_valid and m.gaze_source == Msg.GAZE_SOURCE_EYES
    assert (m.gaze_origin.x, m.gaze_origin.y, m.gaze_origin.z) == pytest.approx((0.1, -0.2, 1.5))
    assert m.gaze_direction.z == pytest.approx(-1.0) and m.gaze_confidence == pytest.approx(0.8)
    assert m.looking_at_robot and m.looking_angle == pytest.approx(math.radians(4.0))
    assert m.looking_duration == pytest.approx(1.5)
    assert m.engagement == Msg.ENGAGEMENT_ENGAGED == int(Engagement.ENGAGED)
    assert m.engagement_level == pytest.approx(0.9) and m.distance == pytest.approx(1.52)
    # a transform moves the origin and rotates the direction
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]       # optical -> x forward, z up
    T[:3, 3] = [0.2, 0.0, 1.0]
    m = interaction_to_msg(_interaction(), T)
    assert (m.gaze_origin.x, m.gaze_origin.y, m.gaze_origin.z) == pytest.approx((1.7, -0.1, 1.2))
    assert (m.gaze_direction.x, m.gaze_direction.y, m.gaze_direction.z) == \
        pytest.approx((-1.0, 0.0, 0.0))
    # without a gaze: invalid, NaN origin, no source
    none = PersonInteraction(4, None, False, math.nan, 0.0, Engagement.UNKNOWN, 0.0, math.nan)
    m = interaction_to_msg(none)
    assert not m.gaze_valid and math.isnan(m.gaze_origin.x) and m.gaze_source == 0
    assert math.isnan(m.looking_angle) and m.engagement == Msg.ENGAGEMENT_UNKNOWN


def test_gaze_arrows_coloured_by_engagement():
    require_ros()
    from std_msgs.msg import Header

    from pose_perception.msg import SkeletonArray
    from pose_perception.ros.conversions import interactions_to_msg
    from pose_perception.ros.markers import ENGAGEMENT_COLORS, MarkerBuilder
    sk = SkeletonArray()
    sk.header = Header(frame_id="cam")
    inter = interactions_to_msg([_interaction(3, True, 3), _interaction(5, False, 1)],
                                sk.header)
    ms = MarkerBuilder().build(sk, None, inter).markers
    arrows = {m.id: m for m in ms if m.ns == "gaze"}
    assert set(arrows) == {3, 5}
    a = arrows[3]
    assert (a.points[1].z - a.points[0].z) == pytest.approx(-1.0)
    assert a.color == ENGAGEMENT_COLORS[3] and arrows[5].color == ENGAGEMENT_COLORS[1]
    texts = {m.id: m.text for m in ms if m.ns == "engagement"}
    assert texts == {3: "ENGAGED (looking)", 5: "DISENGAGED"}


def test_pose_node_publishes_interaction_towards_the_attention_frame(harness):
    """Every processed frame gives a PersonInteractionArray in the skeletons' frame; the
    robot's point is the origin of attention_frame, looked up in TF (here a static transform),
    in the camera's frame."""
    from pose_perception.msg import PersonInteractionArray
    h = harness({"attention_frame": "robot_head",
                 "static_transforms": ["cam_optical robot_head 0.5 0 0 0 0 0 1"]})
    got = []
    h.io.create_subscription(PersonInteractionArray, "people/interaction", got.append, 10)
    h.fake.interactions = [_interaction(1)]
    h.send(2000.0)
    h.spin_until(lambda: got, "PersonInteractionArray")
    m = got[-1]
    assert m.header.frame_id == "cam_optical" and len(m.people) == 1
    assert m.people[0].track_id == 1 and m.people[0].engagement == 3
    assert tuple(h.fake.attention_target) == pytest.approx((0.5, 0.0, 0.0))


def _body_language():
    from pose_perception.core.body_language import BodyLanguage, GestureState
    from pose_perception.core.pointing import Pointing
    from pose_perception.core.posture import Posture
    pt = Pointing(3, "left", np.array([0.1, -0.3, 2.0]), np.array([1.0, 0.0, 0.0]),
                  "eye_fingertip", 0.8, 9.5, np.array([1.1, -0.3, 2.0]), 0.07,
                  np.array([0.6, -0.3, 2.0]))
    return BodyLanguage(Posture.SITTING, 0.9, 8.0,
                        [GestureState("waving", "", 0.7, 9.0),
                         GestureState("thumb_up", "right", 0.8, 9.2),
                         GestureState("pointing", "left", 0.8, 9.5)], pt)


def test_body_language_fields_and_transform():
    """issue 15: posture, gestures and pointing of a person in their PersonInteraction, moved by
    the output transform; without body language the pointing fields are NaN."""
    require_ros()
    from pose_perception.msg import Gesture
    from pose_perception.msg import PersonInteraction as Msg
    from pose_perception.ros.conversions import interaction_to_msg
    it = _interaction()
    it.body = _body_language()
    m = interaction_to_msg(it, None, 10.0)
    assert m.posture == Msg.POSTURE_SITTING and m.posture_confidence == pytest.approx(0.9)
    assert m.posture_duration == pytest.approx(2.0)
    assert [(g.gesture, g.side) for g in m.gestures] == [
        (Gesture.GESTURE_WAVING, ""), (Gesture.GESTURE_THUMB_UP, "right"),
        (Gesture.GESTURE_POINTING, "left")]
    assert m.gestures[1].start.sec == 9 and m.gestures[1].start.nanosec == pytest.approx(2e8, abs=2)
    assert m.pointing and m.pointing_side == "left"
    assert m.pointing_method == Msg.POINTING_METHOD_EYE_FINGERTIP
    assert m.pointing_target_valid and m.pointing_target_sigma == pytest.approx(0.07)
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]       # optical -> x forward, z up
    T[:3, 3] = [0.2, 0.0, 1.0]
    m = interaction_to_msg(it, T, 10.0)
    assert (m.pointing_target.x, m.pointing_target.y, m.pointing_target.z) == \
        pytest.approx((2.2, -1.1, 1.3))
    assert (m.pointing_direction.x, m.pointing_direction.y, m.pointing_direction.z) == \
        pytest.approx((0.0, -1.0, 0.0))
    m = interaction_to_msg(_interaction())
    assert m.posture == Msg.POSTURE_UNKNOWN and m.gestures == [] and not m.pointing
    assert math.isnan(m.pointing_target.x) and not m.pointing_target_valid


def test_events_become_person_event_messages():
    require_ros()
    from std_msgs.msg import Header

    from pose_perception.core.body_language import GestureState, PersonEvent
    from pose_perception.msg import Gesture
    from pose_perception.msg import PersonEvent as Msg
    from pose_perception.ros.body_language_conversions import events_to_msgs
    header = Header(frame_id="cam")
    events = [PersonEvent(2, "fall", 4.5, fall_drop_m=1.1, fall_speed_mps=3.0,
                          position=np.array([0.0, 0.5, 3.0])),
              PersonEvent(3, "gesture_started", 5.0, GestureState("stop", "", 0.7, 4.7)),
              PersonEvent(3, "gesture_ended", 6.0, GestureState("i_love_you", "left", 0.6, 5.5))]
    fall, start, end = events_to_msgs(events, header)
    assert fall.event == Msg.EVENT_FALL and fall.track_id == 2 and fall.header == header
    assert fall.fall_drop == pytest.approx(1.1) and fall.fall_speed == pytest.approx(3.0)
    assert fall.position_valid and fall.position.z == pytest.approx(3.0)
    assert fall.gesture.gesture == Gesture.GESTURE_NONE
    assert start.event == Msg.EVENT_GESTURE_STARTED
    assert start.gesture.gesture == Gesture.GESTURE_STOP
    assert math.isnan(start.fall_drop) and not start.position_valid
    assert end.event == Msg.EVENT_GESTURE_ENDED
    assert end.gesture.gesture == Gesture.GESTURE_I_LOVE_YOU and end.gesture.side == "left"


def test_pointing_markers_and_body_language_in_the_label():
    require_ros()
    from std_msgs.msg import Header

    from pose_perception.msg import Skeleton, SkeletonArray
    from pose_perception.ros.conversions import interactions_to_msg
    from pose_perception.ros.markers import MarkerBuilder
    sk = SkeletonArray()
    sk.header = Header(frame_id="cam")
    s = Skeleton(track_id=3, layout="blazepose33", centroid_valid=True)
    s.keypoints = []
    s.centroid.z = 2.0
    sk.skeletons = [s]
    it = _interaction(3)
    it.body = _body_language()
    ms = MarkerBuilder().build(sk, None, interactions_to_msg([it], sk.header)).markers
    by_ns = {m.ns: m for m in ms}
    ray = by_ns["pointing"]
    assert (ray.points[1].x, ray.points[1].y, ray.points[1].z) == pytest.approx((1.1, -0.3, 2.0))
    assert by_ns["pointing_target"].scale.x == pytest.approx(0.14)
    assert MarkerBuilder.body_language_text(interactions_to_msg([it], sk.header).people[0]) == \
        "sitting, waving, right thumb up, left pointing"


def test_pose_node_publishes_events_and_looks_up_the_up_frame(harness):
    """people/events carries each event once; the 'up' for posture is up_frame's z axis in the
    camera frame (here a camera pitched down by 0.3 rad and rolled by 0.2 rad)."""
    from pose_perception.core import geometry as geo
    from pose_perception.core.body_language import GestureState, PersonEvent
    from pose_perception.msg import PersonEvent as Msg
    q = geo.quat_multiply(geo.quat_from_rpy(0.2, 0.3, 0.0), (-0.5, 0.5, -0.5, 0.5))
    h = harness({"up_frame": "base_link", "static_transforms": [
        "base_link cam_optical 0 0 1 " + " ".join(f"{v:.9f}" for v in q)]})
    got, falls = [], []
    h.io.create_subscription(Msg, "people/events", got.append, 10)
    h.io.create_subscription(Msg, "people/falls", falls.append, 10)
    h.fake.events = [PersonEvent(1, "gesture_started", 2000.0,
                                 GestureState("waving", "", 0.8, 1999.6)),
                     PersonEvent(1, "fall", 1999.8, fall_drop_m=0.9, fall_speed_mps=2.0)]
    h.send(2000.0)
    h.spin_until(lambda: len(got) >= 2 and falls, "PersonEvents")
    assert got[0].event == Msg.EVENT_GESTURE_STARTED and got[0].gesture.name == "waving"
    assert [f.event for f in falls] == [Msg.EVENT_FALL]       # falls also on their own topic
    assert got[0].header.frame_id == "cam_optical"
    expected = geo.quat_to_matrix(q).T @ [0.0, 0.0, 1.0]     # base z in the camera frame
    assert tuple(h.fake.up) == pytest.approx(tuple(expected), abs=1e-6)
    assert abs(expected[1] + 1.0) > 0.01                    # not a level camera's up
