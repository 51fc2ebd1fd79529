"""REP-155 (ROS4HRI) output: the frames and normalised 2D of core/rep155.py, and pose_node's
/humans/... topics checked against its own messages where hri_msgs is installed (skipped
otherwise: build it from ros4hri/hri_msgs in a workspace to run these)."""
import numpy as np
import pytest

from pose_perception.core import rep155
from pose_perception.core.gaze import SOURCE_EYES, Gaze
from pose_perception.core.types import HeadPose, Keypoints, Person


def _person():
    xy = np.stack([np.linspace(100, 200, 33), np.linspace(50, 400, 33)], 1)
    body = Keypoints("blazepose33", xy, np.full(33, 0.8))
    body.init_3d()
    body.xyz[11], body.xyz[12] = [0.2, -0.4, 2.0], [-0.2, -0.4, 2.0]   # left, right shoulder
    body.xyz_valid[[11, 12]] = True
    return Person(body, np.array([90.0, 40.0, 210.0, 410.0]), 0.9, track_id=7,
                  centroid=np.array([0.0, -0.2, 2.0]))


def test_skeleton2d_and_roi_are_normalised_in_rep155_order():
    p = _person()
    sk = rep155.skeleton2d(p.body, 640, 480)
    assert sk.shape == (18, 3)
    assert sk[0, :2] == pytest.approx(p.body.xy[0] / [640, 480])           # nose
    assert sk[1, :2] == pytest.approx((p.body.xy[11] + p.body.xy[12]) / 2 / [640, 480])  # neck
    assert sk[2, :2] == pytest.approx(p.body.xy[12] / [640, 480])          # right shoulder
    assert sk[14, :2] == pytest.approx(p.body.xy[2] / [640, 480])          # left eye
    assert (sk[:, 2] == pytest.approx(0.8))
    assert rep155.normalized_roi([-5, 48, 320, 500], 640, 480) == pytest.approx(
        [0.0, 0.1, 0.5, 1.0])
    assert rep155.skeleton2d(Keypoints("coco17", np.zeros((17, 2)), np.ones(17)), 1, 1) is None


def test_body_face_and_gaze_frames():
    p = _person()
    B = rep155.body_frame(p)
    assert B[:3, 3] == pytest.approx(p.centroid)
    # facing the camera: x (forward) towards the camera (-z optical), y left (+x), z up (-y)
    assert B[:3, 0] == pytest.approx([0, 0, -1]) and B[:3, 1] == pytest.approx([1, 0, 0])
    assert B[:3, 2] == pytest.approx([0, -1, 0])
    p.centroid = None
    assert rep155.body_frame(p) is None
    # face: the head pose itself; gaze: z along the gaze, x to the person's right, y down
    from transforms3d.quaternions import mat2quat
    R = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float).T   # columns: face x, y, z
    w, x, y, z = mat2quat(R)                 # facing the camera: face x = optical -z
    F = rep155.face_frame(HeadPose(np.array([0.0, -0.5, 2.0]), np.array([x, y, z, w])))
    assert F[:3, 0] == pytest.approx([0, 0, -1], abs=1e-9)
    g = Gaze(F[:3, 3], np.array([0.0, 0.0, -1.0]), 0.9, SOURCE_EYES)
    G = rep155.gaze_frame(g, F)
    assert G[:3, 2] == pytest.approx([0, 0, -1]) and G[:3, 0] == pytest.approx(-F[:3, 1])
    assert G[:3, 1] == pytest.approx([0, 1, 0], abs=1e-9) and G[:3, 3] == pytest.approx(F[:3, 3])
    assert rep155.gaze_frame(None) is None


def test_posture_and_gesture_in_hri_msgs_values():
    """issue 15: hri_msgs' BodyPosture (STANDING 1 .. LAYING 4, OTHER 0) and Gesture
    (HANDS_ON_FACE 1 .. WAVING 6, OTHER 0) from the body language."""
    from pose_perception.core.body_language import BodyLanguage, GestureState
    from pose_perception.core.posture import Posture
    assert rep155.hri_posture(None) is None and rep155.hri_gesture(None) is None
    assert rep155.hri_posture(BodyLanguage(Posture.UNKNOWN)) is None
    assert [rep155.hri_posture(BodyLanguage(p)) for p in (
        Posture.STANDING, Posture.SITTING, Posture.CROUCHING, Posture.LYING)] == [1, 2, 3, 4]
    g = GestureState
    body = BodyLanguage(Posture.SITTING, gestures=[g("waving", "", 0.6, 0.0),
                                                   g("arms_crossed", "", 0.9, 0.0)])
    assert rep155.hri_gesture(body) == 2            # the most confident one hri_msgs names
    body.gestures = [g("thumb_up", "left", 0.9, 0.0), g("waving", "", 0.5, 0.0)]
    assert rep155.hri_gesture(body) == 6
    body.gestures = [g("stop", "", 0.9, 0.0)]
    assert rep155.hri_gesture(body) == rep155.HRI_OTHER
    body.gestures = []
    assert rep155.hri_gesture(body) is None


def test_pose_node_publishes_rep155_matching_its_own_messages(harness):
    pytest.importorskip("hri_msgs.msg", reason="hri_msgs not installed (ROS4HRI messages)")
    from hri_msgs.msg import (BodyPosture, EngagementLevel, Gesture, IdsList,
                              NormalizedRegionOfInterest2D, Skeleton2D)

    from pose_perception.core.body_language import BodyLanguage, GestureState
    from pose_perception.core.interaction import Engagement, PersonInteraction
    from pose_perception.core.posture import Posture
    from pose_perception.msg import SkeletonArray
    h = harness()
    got = {"bodies": [], "roi": [], "sk": [], "eng": [], "faces": []}
    qos = 10
    h.io.create_subscription(IdsList, "/humans/bodies/tracked", got["bodies"].append, qos)
    h.io.create_subscription(IdsList, "/humans/faces/tracked", got["faces"].append, qos)
    h.io.create_subscription(NormalizedRegionOfInterest2D, "/humans/bodies/b1/roi",
                             got["roi"].append, qos)
    h.io.create_subscription(Skeleton2D, "/humans/bodies/b1/skeleton2d", got["sk"].append, qos)
    h.io.create_subscription(EngagementLevel, "/humans/persons/p1/engagement_status",
                             got["eng"].append, qos)
    got["posture"], got["gesture"] = [], []
    h.io.create_subscription(BodyPosture, "/humans/bodies/b1/posture", got["posture"].append,
                             qos)
    h.io.create_subscription(Gesture, "/humans/bodies/b1/gesture", got["gesture"].append, qos)
    it = PersonInteraction(1, None, False, float("nan"), 0.0, Engagement.ENGAGING, 0.6, 1.0)
    it.body = BodyLanguage(Posture.SITTING, 0.9, 0.0,
                           [GestureState("left_hand_raised", "left", 0.8, 0.0)])
    h.fake.interactions = [it]
    for i in range(3):
        h.send(3000.0 + i / 30)
        h.spin_until(lambda: len(h.skeletons) > i, f"frame {i}")
    h.spin_until(lambda: all(got[k] for k in ("bodies", "roi", "sk", "eng", "faces",
                                              "posture", "gesture")), "REP-155 topics")
    assert got["posture"][-1].posture == BodyPosture.SITTING
    assert got["gesture"][-1].gesture == Gesture.LEFT_HAND_RAISED
    roi = got["roi"][-1]
    own: SkeletonArray = next(m for m in h.skeletons if m.header.stamp == roi.header.stamp)
    s = own.skeletons[0]
    assert got["bodies"][-1].ids == [f"b{s.track_id}"] and got["faces"][-1].ids == []
    w, hgt = h.fake.calls[-1]["shape"][1], h.fake.calls[-1]["shape"][0]
    assert (roi.xmin, roi.ymin, roi.xmax, roi.ymax) == pytest.approx(
        (s.bbox_x_min / w, s.bbox_y_min / hgt, s.bbox_x_max / w, s.bbox_y_max / hgt), abs=1e-6)
    sk = next(m for m in got["sk"] if m.header.stamp == roi.header.stamp).skeleton
    assert len(sk) == 18
    assert (sk[0].x, sk[0].y) == pytest.approx((s.keypoints[0].x / w, s.keypoints[0].y / hgt))
    assert got["eng"][-1].level == EngagementLevel.ENGAGING


def test_rep155_frames_match_the_face_message_head_pose(ros):
    """The face_<id> frame is the head pose FaceLandmarks carries, gaze_<id> starts there; both
    moved by the output transform like every 3D field."""
    pytest.importorskip("hri_msgs.msg", reason="hri_msgs not installed (ROS4HRI messages)")
    from std_msgs.msg import Header
    from transforms3d.quaternions import mat2quat

    from pose_perception.core.types import Face, FrameResult
    from pose_perception.core import geometry as tfm
    from pose_perception.ros.conversions import face_to_msg
    from pose_perception.ros.rep155 import Rep155Publisher
    R = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float).T
    w, x, y, z = mat2quat(R)
    hp = HeadPose(np.array([0.1, -0.5, 2.0]), np.array([x, y, z, w]))
    face = Face(Keypoints("face468", np.full((468, 2), 50.0), np.full(468, 0.9)),
                np.array([40.0, 40, 60, 60]), 0.9, track_id=5, head_pose=hp)
    face.gaze = Gaze(hp.position, np.array([0.0, 0.0, -1.0]), 0.9, SOURCE_EYES)
    node = ros.create_node("rep155_frames")
    try:
        pub = Rep155Publisher(node)
        T = tfm.make_transform([0.3, 0.0, 1.0], [0.5, -0.5, 0.5, -0.5])
        header = Header(frame_id="base_link")
        frames = dict(pub.publish(FrameResult(faces_without_body=[face]), [], header, 640, 480,
                                  T))
        msg = face_to_msg(face, header, T)
        H = tfm.make_transform([msg.head_pose.position.x, msg.head_pose.position.y,
                                msg.head_pose.position.z],
                               [msg.head_pose.orientation.x, msg.head_pose.orientation.y,
                                msg.head_pose.orientation.z, msg.head_pose.orientation.w])
        np.testing.assert_allclose(frames["face_f5"], H, atol=1e-9)
        np.testing.assert_allclose(frames["gaze_f5"][:3, 3], H[:3, 3], atol=1e-9)
        np.testing.assert_allclose(frames["gaze_f5"][:3, 2], T[:3, :3] @ [0, 0, -1], atol=1e-9)
    finally:
        node.destroy_node()
