"""safety_monitor_node over real topics: skeletons transformed into the robot frame with TF,
status published by a timer (staleness detected without messages), untrusted inputs (no
transform, no depth) give UNKNOWN, zones from parameters."""
import itertools
import math
import time

import pytest


pytestmark = pytest.mark.ros
_ns = itertools.count()
CAM_TO_BASE = "base_link cam 0 0 1.2 -0.5 0.5 -0.5 0.5"   # optical frame 1.2 m above base


class SafetyHarness:
    def __init__(self, ros, params):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy

        from pose_perception.msg import FaceLandmarksArray, SafetyStatus, SkeletonArray
        from pose_perception.ros.safety_monitor_node import SafetyMonitorNode
        self.ns = f"/sm{next(_ns)}_{int(time.time() * 1000) % 100000}"
        self.node = SafetyMonitorNode(namespace=self.ns, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        self.io = ros.create_node("io", namespace=self.ns)
        qos = QoSProfile(depth=5, reliability=QoSReliabilityPolicy.RELIABLE)
        self.pub = self.io.create_publisher(SkeletonArray, "people/skeletons", qos)
        self.pub_faces = self.io.create_publisher(FaceLandmarksArray, "people/faces", qos)
        self.status = []
        self.io.create_subscription(SafetyStatus, "safety/status", self.status.append, 50)
        self.ex = SingleThreadedExecutor()
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        self.spin_until(lambda: self.pub.get_subscription_count() > 0 and self.status,
                        "connected")

    def now(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def spin_until(self, cond, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                last = self.status[-1] if self.status else None
                raise AssertionError(f"timed out waiting for: {what}; last status: {last}")
            self.ex.spin_once(timeout_sec=0.02)

    def send_person(self, z_m, depth_used=True, frame="cam", stamp=None, sigma=0.0,
                    inferred=(), wrist_z_m=None):
        """One person in the optical frame 'cam': every joint at depth z_m, the right wrist
        (16) 0.3 m nearer (or at ``wrist_z_m``); every point's position_sigma ``sigma``, the
        points ``inferred`` SOURCE_MODEL (else SOURCE_DEPTH). Returns the stamp."""
        from pose_perception.msg import Keypoint, Skeleton, SkeletonArray
        from pose_perception.ros.conversions import sec_to_stamp
        msg = SkeletonArray(depth_used=depth_used)
        msg.header.frame_id = frame
        msg.header.stamp = stamp or sec_to_stamp(self.now())
        s = Skeleton(track_id=5, layout="blazepose33", confidence=0.9)
        s.header = msg.header
        wrist = z_m - 0.3 if wrist_z_m is None else wrist_z_m
        for i in range(33):
            k = Keypoint(x=1.0, y=1.0, confidence=0.9, position_valid=depth_used,
                         position_sigma=sigma if depth_used else math.nan,
                         position_source=Keypoint.SOURCE_NONE if not depth_used else
                         Keypoint.SOURCE_MODEL if i in inferred else Keypoint.SOURCE_DEPTH)
            k.position.x, k.position.y = 0.0, -0.3
            k.position.z = (wrist if i == 16 else z_m) if depth_used else math.nan
            s.keypoints.append(k)
        msg.skeletons = [s]
        self.pub.publish(msg)
        return msg.header.stamp

    def send_face(self, stamp, z_m, associated=False, frame="cam"):
        """One face (468 points) in 'cam' at depth z_m, point 1 (nose tip) 0.05 m nearer."""
        from pose_perception.msg import FaceLandmarks, FaceLandmarksArray, Keypoint
        msg = FaceLandmarksArray()
        msg.header.frame_id, msg.header.stamp = frame, stamp
        f = FaceLandmarks(face_id=7 if associated else 0, associated=associated,
                          skeleton_id=7 if associated else 0, confidence=0.95,
                          layout="face468")
        f.header = msg.header
        for i in range(468):
            k = Keypoint(x=1.0, y=1.0, confidence=0.95, position_valid=True)
            k.position.z = z_m - 0.05 if i == 1 else z_m
            f.landmarks.append(k)
        msg.faces = [f]
        self.pub_faces.publish(msg)

    def close(self):
        self.node.destroy_node()
        self.io.destroy_node()


def test_states_from_tf_transformed_skeletons_and_staleness(ros):
    h = SafetyHarness(ros, {"robot_frame": "base_link", "static_transforms": [CAM_TO_BASE],
                            "rate_hz": 20.0, "stale_timeout_s": 0.5})
    try:
        from pose_perception.msg import SafetyStatus
        assert h.status[-1].state == SafetyStatus.STATE_UNKNOWN     # no data yet
        h.send_person(1.1)                                          # wrist at 0.8 m
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_PROTECTIVE_STOP, "STOP")
        st = h.status[-1]
        assert st.header.frame_id == "base_link" and st.speed_scale == 0.0
        assert st.closest_person_id == 5 and st.closest_keypoint_name == "right_wrist"
        assert st.closest_keypoint_index == 16
        # optical (0, -0.3, 0.8) -> base_link (0.8, 0, 1.5)
        assert (st.closest_point.x, st.closest_point.y, st.closest_point.z) == \
            pytest.approx((0.8, 0.0, 1.5), abs=1e-5)
        # to the body surface: the wrist centre at 0.8 m minus the wrist's radius (3 cm)
        assert st.closest_distance == pytest.approx(0.77, abs=1e-5) and st.people_count == 1
        assert st.closest_point_radius == pytest.approx(0.03)
        assert st.closest_point_sigma == 0.0 and not st.closest_point_inferred
        for _ in range(3):
            h.send_person(3.5)
            h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_CLEAR, "CLEAR")
        assert 0 < h.status[-1].speed_scale <= 1 and h.status[-1].data_age < 0.5
        # no more messages: the timer alone turns the status UNKNOWN after stale_timeout_s
        t0 = time.monotonic()
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_UNKNOWN, "stale UNKNOWN")
        assert 0.3 < time.monotonic() - t0 < 2.0
        assert "no fresh perception" in h.status[-1].reason
    finally:
        h.close()


def test_untrusted_inputs_give_unknown_with_reason(ros):
    from pose_perception.msg import SafetyStatus
    h = SafetyHarness(ros, {"robot_frame": "odom", "rate_hz": 20.0})
    try:
        h.send_person(1.5)
        h.spin_until(lambda: "no transform" in h.status[-1].reason, "TF reason")
        assert h.status[-1].state == SafetyStatus.STATE_UNKNOWN
        assert "'cam' -> robot_frame 'odom'" in h.status[-1].reason
    finally:
        h.close()
    h = SafetyHarness(ros, {"robot_frame": "", "rate_hz": 20.0})
    try:
        h.send_person(1.5, depth_used=False)
        h.spin_until(lambda: "without depth" in h.status[-1].reason, "no-depth reason")
        assert h.status[-1].state == SafetyStatus.STATE_UNKNOWN
        # camera frame with 3D distance (robot_frame empty): 1.5 m -> WARNING
        h.send_person(1.8)
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_WARNING, "WARNING")
        assert h.status[-1].header.frame_id == "cam"
        # the wrist's surface: its centre's distance minus its radius (3 cm)
        assert h.status[-1].closest_distance == pytest.approx(math.hypot(0.3, 1.5) - 0.03,
                                                              abs=1e-5)
    finally:
        h.close()


def test_zones_from_parameters(ros):
    from pose_perception.msg import SafetyStatus
    from pose_perception.ros.params import ParameterError
    h = SafetyHarness(ros, {"robot_frame": "base_link", "static_transforms": [CAM_TO_BASE],
                            "zones": ["bench"], "zones.bench.kind": "protective",
                            "zones.bench.polygon": [2.5, -1.0, 4.0, -1.0, 4.0, 1.0, 2.5, 1.0],
                            "rate_hz": 20.0})
    try:
        h.send_person(3.5)             # 3.2-3.5 m away, beyond the warning distance, in the zone
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_PROTECTIVE_STOP,
                     "zone STOP")
        assert "protective zone 'bench'" in h.status[-1].reason
    finally:
        h.close()
    from rclpy.parameter import Parameter

    from pose_perception.ros.safety_monitor_node import SafetyMonitorNode
    with pytest.raises(ParameterError, match="polygon needs >= 3"):
        SafetyMonitorNode(namespace="/bad", parameter_overrides=[
            Parameter("zones", value=["z"]), Parameter("zones.z.kind", value="warning"),
            Parameter("zones.z.polygon", value=[0.0, 0.0, 1.0, 1.0])])
    with pytest.raises(ParameterError, match="protective_distance_m"):
        SafetyMonitorNode(namespace="/bad", parameter_overrides=[
            Parameter("protective_distance_m", value=3.0)])


def test_faces_without_a_body_are_people(ros):
    """A person right in front of the camera shows only a face: it must not read CLEAR."""
    from pose_perception.msg import SafetyStatus
    h = SafetyHarness(ros, {"robot_frame": "base_link", "static_transforms": [CAM_TO_BASE],
                            "rate_hz": 20.0, "face_wait_s": 0.5, "stale_timeout_s": 3.0})
    S = SafetyStatus
    try:
        # skeletons first, their faces a moment later: the monitor waits for the faces (the
        # faces topic has a publisher), so the far skeleton alone never reads CLEAR
        stamp = h.send_person(3.5)
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            h.ex.spin_once(timeout_sec=0.02)
        assert all(st.state == S.STATE_UNKNOWN for st in h.status)   # nothing judged yet
        h.send_face(stamp, 0.45)
        h.spin_until(lambda: h.status[-1].state == S.STATE_PROTECTIVE_STOP, "STOP from face")
        st = h.status[-1]
        assert st.people_count == 2 and st.closest_keypoint_name == "v1"
        assert st.closest_distance == pytest.approx(0.40, abs=1e-5)
        # faces first this time, then skeletons; a face that belongs to a skeleton is not a
        # person of its own
        stamp = h.send_person(3.5, stamp=None)
        h.send_face(stamp, 0.45, associated=True)
        h.spin_until(lambda: h.status[-1].state == S.STATE_CLEAR, "CLEAR")
        assert h.status[-1].people_count == 1
        # the faces of a frame never come: its skeletons go alone after face_wait_s
        from pose_perception.ros.conversions import sec_to_stamp
        h.send_face(sec_to_stamp(h.now() - 5.0), 0.45)     # keeps the faces topic live
        h.send_person(1.1)
        t0 = time.monotonic()
        h.spin_until(lambda: h.status[-1].state == S.STATE_PROTECTIVE_STOP, "STOP, no faces")
        assert 0.4 < time.monotonic() - t0 < 3.0 and h.status[-1].people_count == 1
    finally:
        h.close()


def test_faces_ignored_when_the_topic_is_off(ros):
    from pose_perception.msg import SafetyStatus
    h = SafetyHarness(ros, {"robot_frame": "", "rate_hz": 20.0, "faces_topic": "",
                            "stale_timeout_s": 3.0})
    try:
        stamp = h.send_person(3.5)
        h.send_face(stamp, 0.45)
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_CLEAR, "CLEAR")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            h.ex.spin_once(timeout_sec=0.02)
        assert h.status[-1].state == SafetyStatus.STATE_CLEAR and h.status[-1].people_count == 1
    finally:
        h.close()


def test_face_wait_must_be_shorter_than_the_stale_timeout(ros):
    from rclpy.parameter import Parameter

    from pose_perception.ros.params import ParameterError
    from pose_perception.ros.safety_monitor_node import SafetyMonitorNode
    with pytest.raises(ParameterError, match="'face_wait_s' must be shorter than"):
        SafetyMonitorNode(namespace="/smbad", parameter_overrides=[
            Parameter("face_wait_s", value=0.6), Parameter("stale_timeout_s", value=0.5)])


def test_closest_point_measured_or_inferred_with_its_sigma_and_conservative_distance(ros):
    """issue 17, defect 3: SafetyStatus says whether the closest point was inferred and its
    sigma; sigma_factor sigmas come off the distance; use_inferred_points false ignores them."""
    from pose_perception.msg import SafetyStatus
    params = {"robot_frame": "base_link", "static_transforms": [CAM_TO_BASE], "rate_hz": 20.0}
    h = SafetyHarness(ros, dict(params, sigma_factor=2.0))
    try:
        h.send_person(3.0, sigma=0.1, inferred=(16,), wrist_z_m=1.9)
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_WARNING, "WARNING")
        st = h.status[-1]
        assert st.closest_keypoint_name == "right_wrist" and st.closest_point_inferred
        assert st.closest_point_sigma == pytest.approx(0.1)
        assert st.closest_distance == pytest.approx(1.9 - 0.03 - 2 * 0.1, abs=1e-5)
        assert "closest point inferred" in st.reason
    finally:
        h.close()
    h = SafetyHarness(ros, dict(params, use_inferred_points=False))
    try:
        h.send_person(3.0, sigma=0.1, inferred=(16,), wrist_z_m=1.9)
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_CLEAR, "CLEAR")
        st = h.status[-1]
        assert not st.closest_point_inferred and st.closest_keypoint_name != "right_wrist"
        # the hips: 3.0 - 0.09 (radius) - 2 * 0.1 (default sigma_factor 2)
        assert st.closest_distance == pytest.approx(2.71, abs=1e-5)
    finally:
        h.close()


def test_a_skeleton_whose_points_do_not_match_its_layout_is_untrusted(ros):
    """Its points' body radii are unknown: UNKNOWN with the reason, the node keeps running."""
    from pose_perception.msg import Keypoint, SafetyStatus, Skeleton, SkeletonArray
    from pose_perception.ros.conversions import sec_to_stamp
    h = SafetyHarness(ros, {"robot_frame": "", "rate_hz": 20.0})
    try:
        msg = SkeletonArray(depth_used=True)
        msg.header.frame_id, msg.header.stamp = "cam", sec_to_stamp(h.now())
        s = Skeleton(track_id=3, layout="blazepose33", confidence=0.9)
        s.keypoints = [Keypoint(confidence=0.9, position_valid=True) for _ in range(5)]
        msg.skeletons = [s]
        h.pub.publish(msg)
        h.spin_until(lambda: "malformed SkeletonArray" in h.status[-1].reason, "reason")
        assert h.status[-1].state == SafetyStatus.STATE_UNKNOWN
        h.send_person(3.0)
        h.spin_until(lambda: h.status[-1].state == SafetyStatus.STATE_CLEAR, "recovers")
    finally:
        h.close()
