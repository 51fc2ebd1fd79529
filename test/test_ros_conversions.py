"""ros.conversions: FrameResult -> SkeletonArray / FaceLandmarksArray (every field), CameraInfo <->
CameraModel, Image <-> arrays, SkeletonArray -> safety observations."""
import math

import numpy as np
import pytest

from ros_env import require_ros

pytestmark = pytest.mark.ros


def _result():
    from pose_perception.core.types import (SOURCE_DEPTH, SOURCE_MODEL, Face, FrameResult, Hand,
                                            HeadPose, Keypoints, Person)
    rng = np.random.default_rng(3)
    body = Keypoints("blazepose33", rng.uniform(0, 600, (33, 2)), rng.uniform(0, 1, 33))
    body.init_3d()
    body.xyz[:] = rng.uniform(-1, 1, (33, 3)) + [0, 0, 3]
    body.xyz_valid[:] = np.arange(33) % 4 != 0
    body.xyz[~body.xyz_valid] = np.nan
    body.xyz_sigma[:] = np.where(body.xyz_valid, 0.02, np.nan)
    body.xyz_source[:] = np.where(body.xyz_valid, SOURCE_DEPTH, 0)
    body.xyz_source[5] = SOURCE_MODEL
    hand = Keypoints("hand21", rng.uniform(0, 600, (21, 2)), np.full(21, 0.8))
    mesh = Keypoints("face468", rng.uniform(100, 200, (468, 2)), np.full(468, 0.9))
    mesh.init_3d()
    mesh.xyz[:] = [0.0, -0.5, 2.5]
    mesh.xyz_valid[:] = True
    mesh.xyz_sigma[:] = 0.01
    mesh.xyz_source[:] = SOURCE_DEPTH
    face = Face(mesh, np.array([100, 100, 200, 210.0]), 0.95, person_index=0, track_id=7,
                associated=True,
                head_pose=HeadPose(np.array([0.0, -0.5, 2.5]), np.array([0, 0, 0, 1.0])))
    p = Person(body, np.array([10, 20, 300, 400.0]), 0.97, track_id=7,
               velocity=np.array([0.5, 0.0, -0.2]), centroid=np.array([0.1, 0.2, 3.0]),
               face=face, hands=[Hand(hand, "left", 0.88)])
    loose = Face(mesh.copy(), np.array([400, 50, 450, 110.0]), 0.6, track_id=0, associated=False)
    return FrameResult(persons=[p], faces_without_body=[loose])


def _header(frame="camera_color_optical_frame"):
    from std_msgs.msg import Header

    from pose_perception.ros.conversions import sec_to_stamp
    return Header(stamp=sec_to_stamp(1700000000.123456789), frame_id=frame)


def test_frame_result_to_messages_carries_every_field():
    require_ros()
    from pose_perception.msg import Keypoint, Skeleton
    from pose_perception.ros.conversions import frame_result_to_msgs
    res = _result()
    header = _header()
    sk, fa = frame_result_to_msgs(res, header, depth_used=True)
    assert sk.header == header and fa.header == header and sk.depth_used
    assert len(sk.skeletons) == 1
    s = sk.skeletons[0]
    p = res.persons[0]
    assert s.header == header and s.track_id == 7 and s.layout == Skeleton.LAYOUT_BLAZEPOSE33
    assert s.confidence == pytest.approx(0.97)
    assert len(s.keypoints) == 33
    for i, k in enumerate(s.keypoints):
        assert (k.x, k.y) == pytest.approx(tuple(p.body.xy[i]), abs=1e-3)
        assert k.confidence == pytest.approx(p.body.score[i], abs=1e-6)
        if p.body.xyz_valid[i]:
            assert k.position_valid
            assert (k.position.x, k.position.y, k.position.z) == \
                pytest.approx(tuple(p.body.xyz[i]), abs=1e-6)
            assert k.position_sigma == pytest.approx(0.02)
            assert k.position_source == (Keypoint.SOURCE_MODEL if i == 5 else
                                         Keypoint.SOURCE_DEPTH)
        else:
            assert not k.position_valid and k.position_source == Keypoint.SOURCE_NONE
            assert all(math.isnan(v) for v in (k.position.x, k.position.y, k.position.z,
                                               k.position_sigma))
    assert (s.bbox_x_min, s.bbox_y_min, s.bbox_x_max, s.bbox_y_max) == (10, 20, 300, 400)
    assert s.centroid_valid and (s.centroid.x, s.centroid.z) == pytest.approx((0.1, 3.0))
    assert s.velocity_valid and s.velocity.x == pytest.approx(0.5)
    assert s.has_face
    assert len(s.left_hand) == 21 and s.left_hand_confidence == pytest.approx(0.88)
    assert s.right_hand == [] and s.right_hand_confidence == 0.0
    assert not any(k.position_valid for k in s.left_hand)   # the hand had no 3D
    f, loose = fa.faces
    assert (f.face_id, f.associated, f.skeleton_id, f.layout) == (7, True, 7, "face468")
    assert len(f.landmarks) == 468 and f.landmarks[0].position.z == pytest.approx(2.5)
    assert f.head_pose_valid and f.head_pose.position.z == pytest.approx(2.5)
    assert (f.bbox_x_min, f.bbox_y_max) == (100, 210)
    assert (loose.associated, loose.skeleton_id, loose.face_id) == (False, 0, 0)


def test_ibug68_layout_and_2d_only_results():
    require_ros()
    from pose_perception.core.types import FrameResult, Keypoints, Person
    from pose_perception.ros.conversions import frame_result_to_msgs
    res = _result()
    _, fa = frame_result_to_msgs(res, _header(), True, face_layout="ibug68")
    assert fa.faces[0].layout == "ibug68" and len(fa.faces[0].landmarks) == 68
    # issue 19: faces nobody subscribes to are not converted; the skeletons are the same
    sk_all, _ = frame_result_to_msgs(res, _header(), True)
    sk, fa = frame_result_to_msgs(res, _header(), True, faces=False)
    assert fa.faces == [] and fa.header == _header()
    assert [(s.track_id, len(s.keypoints), s.has_face) for s in sk.skeletons] == \
        [(s.track_id, len(s.keypoints), s.has_face) for s in sk_all.skeletons]
    with pytest.raises(ValueError, match="face layout"):
        frame_result_to_msgs(res, _header(), True, face_layout="dlib5")
    flat = FrameResult(persons=[Person(Keypoints("blazepose33", np.zeros((33, 2)),
                                                 np.ones(33)), np.zeros(4), 0.5)])
    sk, _ = frame_result_to_msgs(flat, _header(), depth_used=False)
    s = sk.skeletons[0]
    assert not sk.depth_used and s.track_id == 0 and not s.centroid_valid
    assert not s.velocity_valid and math.isnan(s.centroid.x)
    assert not any(k.position_valid for k in s.keypoints)
    assert all(math.isnan(k.position.z) for k in s.keypoints)


def test_output_transform_moves_points_centroid_velocity_and_head_pose():
    require_ros()
    from pose_perception.core import geometry as geo
    from pose_perception.ros.conversions import frame_result_to_msgs
    res = _result()
    # optical frame -> a robot-like frame: x forward = optical z, y left = -optical x,
    # z up = -optical y, camera 1.2 m above the origin
    T = geo.make_transform([0, 0, 1.2], [-0.5, 0.5, -0.5, 0.5])
    np.testing.assert_allclose(geo.apply(T, [[0, 0, 1.0]])[0], [1, 0, 1.2], atol=1e-9)
    sk, fa = frame_result_to_msgs(res, _header("base_link"), True, T)
    s = sk.skeletons[0]
    assert sk.header.frame_id == "base_link"
    k = s.keypoints[1]
    x, y, z = res.persons[0].body.xyz[1]
    assert (k.position.x, k.position.y, k.position.z) == pytest.approx((z, -x, 1.2 - y),
                                                                       abs=1e-6)
    assert (s.centroid.x, s.centroid.y, s.centroid.z) == pytest.approx((3.0, -0.1, 1.0))
    assert (s.velocity.x, s.velocity.y, s.velocity.z) == pytest.approx((-0.2, -0.5, 0.0),
                                                                       abs=1e-9)
    hp = fa.faces[0].head_pose
    assert (hp.position.x, hp.position.z) == pytest.approx((2.5, 1.7))
    R = geo.quat_to_matrix([hp.orientation.x, hp.orientation.y, hp.orientation.z,
                            hp.orientation.w])
    np.testing.assert_allclose(R, T[:3, :3], atol=1e-6)


def test_camera_info_conversion_and_validation():
    require_ros()
    from sensor_msgs.msg import CameraInfo

    from pose_perception.core.camera import CameraModel
    from pose_perception.ros.conversions import camera_info_to_model, camera_model_to_info
    m = CameraModel(640, 480, [600, 0, 320, 0, 601, 240, 0, 0, 1],
                    [0.1, -0.05, 0.001, 0.002, 0.01], "plumb_bob")
    info = camera_model_to_info(m)
    back = camera_info_to_model(info)
    assert back.same_geometry(m)
    assert list(info.p)[:3] == [600.0, 0.0, 320.0] and list(info.r)[0] == 1.0
    bad = CameraInfo(width=640, height=480)
    bad.header.frame_id = "cam"
    with pytest.raises(ValueError, match=r"unusable CameraInfo \(frame 'cam'\).*all zero"):
        camera_info_to_model(bad)
    nan = camera_model_to_info(m)
    nan.k[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        camera_info_to_model(nan)
    zero = camera_model_to_info(m)
    zero.width = 0
    with pytest.raises(ValueError, match="size"):
        camera_info_to_model(zero)


def test_camera_model_cache_fits_the_model_to_the_image():
    require_ros()
    from pose_perception.core.camera import CameraModel
    from pose_perception.ros.conversions import CameraModelCache, camera_model_to_info
    info = camera_model_to_info(CameraModel(640, 480, [600, 0, 320, 0, 600, 240, 0, 0, 1]))
    cache = CameraModelCache()
    model, problem = cache.for_image(info, 640, 480)
    assert problem == "" and (model.width, model.height) == (640, 480) and cache.changed
    half, problem = cache.for_image(info, 320, 240)          # same aspect ratio: scaled
    assert "320x240 but CameraInfo 640x480: intrinsics scaled" in problem
    assert (half.width, half.height) == (320, 240) and half.K[0, 0] == pytest.approx(300.0)
    assert cache.for_image(info, 320, 240)[0] is half and not cache.changed   # cached
    wide, problem = cache.for_image(info, 640, 360)           # another aspect ratio: 2D only
    assert wide is None and "640x360 does not match its CameraInfo 640x480" in problem
    bad = camera_model_to_info(CameraModel(640, 480, [600, 0, 320, 0, 600, 240, 0, 0, 1]))
    bad.k[0] = float("nan")
    model, problem = cache.for_image(bad, 640, 480)
    assert model is None and "NaN" in problem and problem.endswith(": publishing 2D only")


def test_image_messages_roundtrip():
    require_ros()
    from pose_perception.ros.conversions import array_to_image_msg, image_msg_to_array
    d = (np.arange(12, dtype=np.uint16) * 300).reshape(3, 4)
    msg = array_to_image_msg(d, "16UC1", _header())
    assert (msg.height, msg.width, msg.step, msg.is_bigendian) == (3, 4, 8, 0)
    np.testing.assert_array_equal(image_msg_to_array(msg), d)


def test_skeletons_to_observations_with_transform_and_hand_names():
    require_ros()
    from pose_perception.core import geometry as geo
    from pose_perception.ros.conversions import (frame_result_to_msgs, observation_point_name,
                                                 skeletons_to_observations)
    res = _result()
    sk, _ = frame_result_to_msgs(res, _header(), True)
    T = geo.make_transform([1, 2, 3], [0, 0, 0, 1])
    (ob,) = skeletons_to_observations(sk, T)
    body = res.persons[0].body
    assert ob.track_id == 7 and ob.points.shape == (33 + 21, 3) and ob.layout == "blazepose33"
    np.testing.assert_allclose(ob.points[1], body.xyz[1] + [1, 2, 3], atol=1e-5)
    np.testing.assert_array_equal(ob.valid[:33], body.xyz_valid)
    assert not ob.valid[33:].any()
    np.testing.assert_allclose(ob.velocity, [0.5, 0, -0.2])
    s = sk.skeletons[0]
    assert observation_point_name(s, 16) == "right_wrist"
    assert observation_point_name(s, 33 + 8) == "left_hand.index_tip"
    assert observation_point_name(s, -1) == ""


def test_faces_to_observations_and_back_to_faces():
    """Only faces without a skeleton become safety observations; a FaceLandmarks message reads
    back as the Face it came from (lifting_node's input)."""
    require_ros()
    from pose_perception.core import geometry as geo
    from pose_perception.ros.conversions import (face_msg_to_face, faces_to_observations,
                                                 frame_result_to_msgs)
    res = _result()
    _, fa = frame_result_to_msgs(res, _header(), True)
    assert [f.associated for f in fa.faces] == [True, False]
    (ob,) = faces_to_observations(fa, geo.make_transform([1, 0, 0], [0, 0, 0, 1]))
    assert ob.track_id == 0 and ob.layout == "face468" and ob.points.shape == (468, 3)
    np.testing.assert_allclose(ob.points[0], [1.0, -0.5, 2.5], atol=1e-6)
    assert ob.valid.all() and ob.velocity is None
    loose = res.faces_without_body[0]
    back = face_msg_to_face(fa.faces[1])
    assert back.mesh.layout == "face468" and not back.associated and back.track_id == 0
    np.testing.assert_allclose(back.mesh.xy, loose.mesh.xy, atol=1e-3)
    np.testing.assert_allclose(back.mesh.xyz, loose.mesh.xyz, atol=1e-6)
    np.testing.assert_allclose(back.box, loose.box) and back.score == pytest.approx(0.6)
    assert face_msg_to_face(fa.faces[0]).track_id == 7
    fa.faces[1].landmarks = fa.faces[1].landmarks[:67]
    with pytest.raises(ValueError, match="has 67 landmarks"):
        face_msg_to_face(fa.faces[1])
    fa.faces[1].layout = "face999"
    with pytest.raises(ValueError, match="face layout must be one of"):
        face_msg_to_face(fa.faces[1])
