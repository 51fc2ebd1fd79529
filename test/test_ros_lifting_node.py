"""lifting_node over real topics: a 2D SkeletonArray + a depth image of a known plane + the
CameraInfos in, a 3D SkeletonArray out. Points lie on the plane pushed along their ray by the
joint-centre offset; pixels without depth give invalid points; pairing by nearest stamp whatever
the arrival order; no depth within the slop -> 2D output (depth_used false); bad skeletons are
skipped without stopping the node."""
import itertools
import math
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

W, H, F = 320, 240, 250.0
CX, CY = (W - 1) / 2, (H - 1) / 2
PLANE_M = 2.0
HOLE = (slice(95, 131), slice(110, 141))      # rows, cols without depth (the right hand)
RIGHT_HAND = (16, 18, 20, 22)                 # wrist, pinky, index, thumb: inside the hole
_ns = itertools.count()


def body_pixels():
    """A standing person's BlazePose-33 joints projected at the plane's depth."""
    from synthetic_people import TEMPLATE
    x, y = TEMPLATE[:, 0], TEMPLATE[:, 1] - 0.1
    return np.stack([F * x / PLANE_M + CX, F * y / PLANE_M + CY], axis=1)


def skeleton_array(t, layout="blazepose33", frame="cam_optical"):
    from pose_perception.msg import Keypoint, Skeleton, SkeletonArray
    from pose_perception.ros.conversions import sec_to_stamp
    msg = SkeletonArray(depth_used=False)
    msg.header.stamp, msg.header.frame_id = sec_to_stamp(t), frame
    s = Skeleton(track_id=7, layout=layout, confidence=0.8, has_face=True)
    s.header = msg.header
    xy = body_pixels()
    for u, v in xy:
        k = Keypoint(x=float(u), y=float(v), confidence=0.9, position_sigma=math.nan)
        k.position.x = k.position.y = k.position.z = math.nan
        s.keypoints.append(k)
    wrist = xy[15]                      # the left wrist: a left hand of 21 points around it
    for i in range(21):
        k = Keypoint(x=float(wrist[0] + 6 * math.cos(i)), y=float(wrist[1] + 6 * math.sin(i)),
                     confidence=0.9, position_sigma=math.nan)
        k.position.x = k.position.y = k.position.z = math.nan
        s.left_hand.append(k)
    s.left_hand_confidence = 0.7
    s.bbox_x_min, s.bbox_y_min = (float(v) for v in xy.min(axis=0))
    s.bbox_x_max, s.bbox_y_max = (float(v) for v in xy.max(axis=0))
    msg.skeletons = [s]
    return msg


def depth_msg(t, frame="cam_optical", metres=PLANE_M):
    from std_msgs.msg import Header

    from pose_perception.ros.conversions import array_to_image_msg, sec_to_stamp
    d = np.full((H, W), int(metres * 1000), np.uint16)
    d[HOLE] = 0
    return array_to_image_msg(d, "16UC1", Header(stamp=sec_to_stamp(t), frame_id=frame))


def info_msg(frame="cam_optical"):
    from std_msgs.msg import Header

    from pose_perception.core.camera import CameraModel
    from pose_perception.ros.conversions import camera_model_to_info
    m = CameraModel(W, H, [F, 0, CX, 0, F, CY, 0, 0, 1], None, "none")
    return camera_model_to_info(m, Header(frame_id=frame))


class LiftHarness:
    def __init__(self, ros, params=None):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from pose_perception.msg import FaceLandmarksArray, SkeletonArray
        from pose_perception.ros.lifting_node import LiftingNode
        self.ns = f"/ln{next(_ns)}_{int(time.time() * 1000) % 100000}"
        p = {"camera_namespace": self.ns + "/camera", "depth_wait_s": 0.3}
        p.update(params or {})
        self.node = LiftingNode(namespace=self.ns, parameter_overrides=[
            Parameter(k, value=v) for k, v in p.items()])
        self.io = ros.create_node("io", namespace=self.ns)
        qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        cam = self.ns + "/camera/"
        self.pub = {"info": self.io.create_publisher(CameraInfo, cam + "color/camera_info", qos),
                    "dinfo": self.io.create_publisher(
                        CameraInfo, cam + "aligned_depth_to_color/camera_info", qos),
                    "depth": self.io.create_publisher(
                        Image, cam + "aligned_depth_to_color/image_raw", qos),
                    "skel": self.io.create_publisher(SkeletonArray, "people/skeletons", qos),
                    "faces": self.io.create_publisher(FaceLandmarksArray, "people/faces", qos)}
        self.out, self.faces_out = [], []
        self.io.create_subscription(SkeletonArray, "people/skeletons_3d", self.out.append, qos)
        self.io.create_subscription(FaceLandmarksArray, "people/faces_3d", self.faces_out.append,
                                    qos)
        self.ex = SingleThreadedExecutor()
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in self.pub.values())
                        and self.node.pub.get_subscription_count() > 0
                        and self.node.pub_faces.get_subscription_count() > 0, "connected")
        self.pub["info"].publish(info_msg())
        self.pub["dinfo"].publish(info_msg())
        self.spin_until(lambda: self.node._color_info is not None
                        and self.node._depth_info is not None, "CameraInfos")

    def spin_until(self, cond, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {what}; counts "
                                     f"{self.node.counts}")
            self.ex.spin_once(timeout_sec=0.02)

    def close(self):
        self.node.destroy_node()
        self.io.destroy_node()


def expected_joint_centres(xy, layout):
    """Plane surface point on each pixel's ray, pushed along the ray by the joint radius times
    the lifter's surface factor (module docstring of core.lifting, step 4)."""
    from pose_perception.core.depth_windows import disc_offsets, surface_factor
    from pose_perception.core.lifting import BODY_RADIUS_M, LiftingConfig
    cfg = LiftingConfig()
    offset = surface_factor(cfg.sample_fraction, disc_offsets(cfg.sample_grid)) \
        * BODY_RADIUS_M[layout]
    p = np.stack([(xy[:, 0] - CX) / F, (xy[:, 1] - CY) / F, np.ones(len(xy))], 1) * PLANE_M
    r = np.linalg.norm(p, axis=1)
    return p * ((r + offset) / r)[:, None], offset


def core_lift(xy):
    """The core Lifter on the same input (depth as float metres, the hole NaN)."""
    from pose_perception.core.camera import CameraModel
    from pose_perception.core.lifting import Lifter
    from pose_perception.core.types import Keypoints
    depth = np.full((H, W), PLANE_M, np.float32)
    depth[HOLE] = np.nan
    kps = Keypoints("blazepose33", xy, np.full(33, 0.9))
    Lifter().lift_keypoints(kps, depth, CameraModel(W, H, [F, 0, CX, 0, F, CY, 0, 0, 1], None,
                                                    "none"), float(np.ptp(xy[:, 1])))
    return kps


def arrays(kps):
    from pose_perception.ros.conversions import keypoint_msgs_to_arrays
    return keypoint_msgs_to_arrays(kps)


def test_lifts_onto_the_plane_and_holes_stay_invalid(ros):
    from pose_perception.msg import Keypoint
    h = LiftHarness(ros)
    try:
        t = 100.0
        h.pub["depth"].publish(depth_msg(t))
        h.spin_until(lambda: len(h.node._depths) == 1, "depth stored")
        h.pub["skel"].publish(skeleton_array(t))
        h.spin_until(lambda: h.out, "3D skeletons")
        out = h.out[-1]
        assert out.depth_used and out.header.frame_id == "cam_optical"
        assert (out.header.stamp.sec, out.header.stamp.nanosec) == (100, 0)
        s = out.skeletons[0]
        assert s.track_id == 7 and s.has_face and s.layout == "blazepose33"
        assert s.confidence == pytest.approx(0.8) and s.left_hand_confidence == pytest.approx(0.7)
        assert not s.velocity_valid
        xy_in = body_pixels()
        xy, conf, xyz, valid = arrays(s.keypoints)
        np.testing.assert_allclose(xy, xy_in, atol=1e-3)          # 2D passed through
        hole = np.zeros(33, bool)
        hole[list(RIGHT_HAND)] = True
        assert not valid[hole].any() and np.isnan(xyz[hole]).all()
        assert all(s.keypoints[i].position_source == Keypoint.SOURCE_NONE for i in RIGHT_HAND)
        assert valid[~hole].all(), np.flatnonzero(~valid & ~hole)
        # measured joints: on the plane, pushed along the ray by the joint-centre offset
        src = np.array([k.position_source for k in s.keypoints])
        measured = src == Keypoint.SOURCE_DEPTH
        assert measured[[0, 11, 12, 13, 14, 15, 23, 24, 25, 26, 27, 28]].all()
        want, offset = expected_joint_centres(xy_in, "blazepose33")
        assert offset.max() > 0.05                               # the hips: 9 cm radius
        np.testing.assert_allclose(xyz[measured], want[measured], atol=0.003)
        assert np.all(xyz[~hole, 2] >= PLANE_M - 1e-4)            # never in front of the plane
        assert all(0 < s.keypoints[i].position_sigma < 0.1 for i in np.flatnonzero(~hole))
        # exactly what the core Lifter gives pose_node for the same pixels and depth (fingers
        # and feet overlapping other body parts are re-placed by its occlusion reasoning)
        core = core_lift(xy_in)
        np.testing.assert_allclose(xyz[~hole], core.xyz[~hole], atol=1e-5)
        np.testing.assert_array_equal(src, core.xyz_source)
        assert s.centroid_valid and s.centroid.z == pytest.approx(
            np.mean(want[[11, 12, 23, 24], 2]), abs=0.003)
        # the left hand: on the plane plus at most its largest joint radius (2 cm)
        _, _, hxyz, hvalid = arrays(s.left_hand)
        assert hvalid.all() and len(s.left_hand) == 21
        assert np.all((hxyz[:, 2] >= PLANE_M - 1e-4) & (hxyz[:, 2] <= PLANE_M + 0.021))
    finally:
        h.close()


def test_pairing_by_stamp_in_any_order_2d_without_depth_and_bad_input(ros):
    h = LiftHarness(ros, {"sync_slop_s": 0.02})
    try:
        # the skeletons first, their depth later (and an older depth within the slop already
        # there, of another plane): it waits for the nearer depth instead of taking the old one
        h.pub["depth"].publish(depth_msg(9.99, metres=3.0))
        h.spin_until(lambda: len(h.node._depths) == 1, "old depth stored")
        h.pub["skel"].publish(skeleton_array(10.0))
        h.spin_until(lambda: h.node.counts["input"] == 1, "skeletons received")
        h.pub["depth"].publish(depth_msg(10.0))
        h.spin_until(lambda: h.out, "3D skeletons")
        assert h.out[-1].depth_used and h.out[-1].header.stamp.sec == 10
        _, _, xyz, valid = arrays(h.out[-1].skeletons[0].keypoints)
        assert valid[0] and xyz[0, 2] == pytest.approx(PLANE_M, abs=0.003)   # nose: the new
        # and the newer depth pairs with the nearest skeletons in the other order too
        h.pub["depth"].publish(depth_msg(10.033, metres=2.5))
        h.spin_until(lambda: len(h.node._depths) == 3, "depth stored")
        h.pub["skel"].publish(skeleton_array(10.03))
        h.spin_until(lambda: len(h.out) == 2, "3D skeletons")
        _, _, xyz, valid = arrays(h.out[-1].skeletons[0].keypoints)
        assert valid[0] and xyz[0, 2] == pytest.approx(2.5, abs=0.003)
        # no depth within sync_slop_s: published in 2D after depth_wait_s, every 3D invalid
        h.pub["skel"].publish(skeleton_array(20.0))
        h.spin_until(lambda: len(h.out) == 3, "2D skeletons")
        out = h.out[-1]
        assert not out.depth_used and out.header.stamp.sec == 20
        _, _, xyz, valid = arrays(out.skeletons[0].keypoints)
        assert not valid.any() and np.isnan(xyz).all() and not out.skeletons[0].centroid_valid
        # a skeleton of an unknown layout is skipped; the node goes on with the next one
        h.pub["depth"].publish(depth_msg(30.0))
        h.pub["skel"].publish(skeleton_array(29.995, layout="halpe26"))
        h.spin_until(lambda: h.node.counts["skipped"] == 1, "bad skeletons skipped")
        h.pub["skel"].publish(skeleton_array(30.0))
        h.spin_until(lambda: len(h.out) == 4, "3D skeletons after bad input")
        assert h.out[-1].depth_used and h.out[-1].header.stamp.sec == 30
    finally:
        h.close()


def test_invalid_parameters_are_reported(ros):
    from pose_perception.ros.params import ParameterError
    with pytest.raises(ParameterError) as exc:
        LiftHarness(ros, {"sync_slop_s": -1.0, "perception.lifting.min_samples": 2.5,
                          "depth_histroy": 3})
    text = str(exc.value)
    assert "sync_slop_s" in text and "depth_histroy" in text and "depth_history" in text


def face_array(t, layout="face468", associated=False, frame="cam_optical"):
    """One face: its points spread over a 40 px square left of the body (on the plane)."""
    from pose_perception.msg import FaceLandmarks, FaceLandmarksArray, Keypoint
    from pose_perception.ros.conversions import sec_to_stamp
    n = 468 if layout == "face468" else 68
    msg = FaceLandmarksArray()
    msg.header.stamp, msg.header.frame_id = sec_to_stamp(t), frame
    f = FaceLandmarks(face_id=3 if associated else 0, associated=associated,
                      skeleton_id=3 if associated else 0, confidence=0.9, layout=layout)
    f.header = msg.header
    rng = np.random.default_rng(0)
    xy = np.stack([rng.uniform(30, 70, n), rng.uniform(30, 70, n)], 1)
    for u, v in xy:
        k = Keypoint(x=float(u), y=float(v), confidence=0.9, position_sigma=math.nan)
        k.position.x = k.position.y = k.position.z = math.nan
        f.landmarks.append(k)
    f.bbox_x_min = f.bbox_y_min = 30.0
    f.bbox_x_max = f.bbox_y_max = 70.0
    msg.faces = [f]
    return msg, xy


def test_faces_are_lifted_too(ros):
    """The split mode lifts pose_node's faces as well: mesh points on the depth surface, ids and
    association passed through; an ibug68 face too (no head pose for it); bad faces skipped."""
    h = LiftHarness(ros)
    try:
        h.pub["depth"].publish(depth_msg(50.0))
        h.spin_until(lambda: len(h.node._depths) == 1, "depth stored")
        msg, xy = face_array(50.0, associated=True)
        h.pub["faces"].publish(msg)
        h.spin_until(lambda: h.faces_out, "3D faces")
        out = h.faces_out[-1]
        assert out.header.frame_id == "cam_optical" and out.header.stamp.sec == 50
        f = out.faces[0]
        assert f.associated and f.face_id == 3 and f.skeleton_id == 3 and f.layout == "face468"
        assert f.confidence == pytest.approx(0.9) and f.bbox_x_max == pytest.approx(70.0)
        fxy, _, xyz, valid = arrays(f.landmarks)
        np.testing.assert_allclose(fxy, xy, atol=1e-3)
        assert valid.all()                                   # face points: surface points
        np.testing.assert_allclose(xyz[:, 2], PLANE_M, atol=0.003)
        want = np.stack([(xy[:, 0] - CX) / F, (xy[:, 1] - CY) / F], 1) * PLANE_M
        np.testing.assert_allclose(xyz[:, :2], want, atol=0.005)
        msg, _ = face_array(50.0, layout="ibug68")
        h.pub["faces"].publish(msg)
        h.spin_until(lambda: len(h.faces_out) == 2, "3D ibug68 face")
        f = h.faces_out[-1].faces[0]
        assert f.layout == "ibug68" and len(f.landmarks) == 68 and not f.head_pose_valid
        assert arrays(f.landmarks)[3].all()
        bad, _ = face_array(50.0)
        bad.faces[0].landmarks = bad.faces[0].landmarks[:10]
        h.pub["faces"].publish(bad)
        h.spin_until(lambda: h.node.counts["skipped"] == 1, "bad faces skipped")
        h.pub["faces"].publish(face_array(50.0)[0])
        h.spin_until(lambda: len(h.faces_out) == 3, "3D faces after bad input")
    finally:
        h.close()


def test_a_full_queue_publishes_its_oldest_skeletons_instead_of_failing(ros):
    """More skeletons waiting for depth than the queue holds: the oldest goes out (in 2D, no
    depth near it) and no frame fails (the overflow once passed (ready, depth) as the message)."""
    h = LiftHarness(ros, {"depth_wait_s": 30.0, "qos_depth": 2})
    try:
        n = 2 * h.node.p["qos_depth"] + 2
        for i in range(n):
            h.node._on_input(skeleton_array(50.0 + i))
        assert h.node.counts["skipped"] == 0
        h.spin_until(lambda: len(h.out) == 2, "the two oldest published")
        assert [m.header.stamp.sec for m in h.out] == [50, 51]
        assert not any(m.depth_used for m in h.out)
    finally:
        h.close()
