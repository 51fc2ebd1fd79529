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
