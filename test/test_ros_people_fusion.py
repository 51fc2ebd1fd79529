"""ROS integration of the people_fusion node, three processes: two stand-in pose nodes
(test/fusion_camera_proc.py, two cameras 0.6 m apart with a known transform, both seeing the same
two people) and the fusion node; this process listens. One fused person per real person, each
seen by both cameras, ids kept when a camera stalls; a camera without a transform is reported in
/diagnostics and fused into nothing."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ros_env import isolated_domain_id, require_ros

pytestmark = pytest.mark.ros

HERE = Path(__file__).resolve().parent
# optical frame (x right, y down, z forward) of a camera looking along the world's x axis (z up)
R_WORLD_OPTICAL = np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, -1.0, 0]])
CAMERAS = {"/cam_left": ("cam_left_optical", [0.0, 0.3, 1.2]),
           "/cam_right": ("cam_right_optical", [0.0, -0.3, 1.2])}


def _pose_args(position):
    from pose_perception.core import geometry as tfm
    q = tfm.matrix_to_quat(R_WORLD_OPTICAL)
    return [str(v) for v in [*position, *q]]


def _start_camera(ns):
    frame, pos = CAMERAS[ns]
    return subprocess.Popen([sys.executable, str(HERE / "fusion_camera_proc.py"), ns, frame,
                             *_pose_args(pos), "60"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _static(frame, pos):
    return "world " + frame + " " + " ".join(_pose_args(pos))


def _stop(proc, sig=signal.SIGINT):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_two_cameras_one_fused_person_per_real_person(tmp_path):
    require_ros()
    isolated_domain_id()
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from pose_perception.msg import SkeletonArray
    from fusion_camera_proc import PEOPLE_WORLD, body_points

    params = tmp_path / "fusion.yaml"
    statics = ", ".join(f'"{_static(f, p)}"' for f, p in CAMERAS.values())
    params.write_text("people_fusion:\n  ros__parameters:\n"
                      "    cameras: ['/cam_left', '/cam_right', '/cam_bad']\n"
                      "    fusion_frame: world\n"
                      f"    static_transforms: [{statics}]\n"
                      "    max_age_s: 0.5\n")
    fusion = subprocess.Popen([sys.executable, "-m", "pose_perception.cli", "fusion",
                               "--ros-args", "--params-file", str(params)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cams = {ns: _start_camera(ns) for ns in CAMERAS}
    got, diags = [], {}
    rclpy.init()
    try:
        node = rclpy.create_node("fusion_listener")
        qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        node.create_subscription(SkeletonArray, "/fused/skeletons", got.append, qos)

        def on_diag(msg):
            for st in msg.status:
                diags[st.name] = st
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        bad = node.create_publisher(SkeletonArray, "/cam_bad/people/skeletons", qos)

        def spin_for(seconds, until=None):
            end = time.monotonic() + seconds
            while time.monotonic() < end and fusion.poll() is None:
                rclpy.spin_once(node, timeout_sec=0.05)
                if until is not None and until():
                    return True
            return False

        def both_seen():
            return any(len(m.skeletons) == 2 and all(len(s.cameras) == 2 for s in m.skeletons)
                       for m in got[-5:])
        assert spin_for(60, both_seen), f"no fused output with both cameras; got {len(got)}"
        # a camera whose frame has no transform: reported, fused into nothing
        for _ in range(5):
            msg = SkeletonArray(depth_used=True)
            msg.header.frame_id = "nowhere_optical"
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.skeletons = list(got[-1].skeletons)
            bad.publish(msg)
            spin_for(0.1)
        got.clear()
        spin_for(2.0)
        assert len(got) > 10
        ids = set()
        for m in got[2:]:
            assert m.header.frame_id == "world"
            assert sorted(m.cameras) == ["/cam_left", "/cam_right"]   # /cam_bad: no transform
            assert len(m.skeletons) == 2, "a phantom or a lost person"
            for s in m.skeletons:
                assert sorted(s.cameras) == ["/cam_left", "/cam_right"]
                pts = np.array([[k.position.x, k.position.y, k.position.z]
                                for k in s.keypoints])
                err = min(np.linalg.norm(pts - body_points(p), axis=1).mean()
                          for p in PEOPLE_WORLD)
                assert err < 0.03          # 1 cm noise per camera, both fused
                ids.add(s.track_id)
        assert ids == {1, 2}
        assert spin_for(3.0, lambda: any("cam_bad" in n and "no transform" in st.message
                                         for n, st in diags.items()))
        # the right camera stalls: the left one carries on alone, same ids, no phantom
        _stop(cams["/cam_right"], signal.SIGKILL)
        spin_for(1.5)
        got.clear()
        spin_for(1.5)
        assert len(got) > 5
        for m in got:
            assert list(m.cameras) == ["/cam_left"]
            assert len(m.skeletons) == 2
            assert all(list(s.cameras) == ["/cam_left"] for s in m.skeletons)
            assert {s.track_id for s in m.skeletons} == {1, 2}
        assert spin_for(3.0, lambda: any("cam_right" in n and "stale" in st.message
                                         or "cam_right" in n and "no fresh" in st.message
                                         for n, st in diags.items()))
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
        for p in cams.values():
            _stop(p)
        rc = _stop(fusion, signal.SIGTERM)         # exits 0 (ros/stop.py), as on SIGINT
        out = fusion.stdout.read()
    assert rc == 0, out


class _InProcess:
    """A PeopleFusionNode on cameras ``<ns>/<letter>`` (``statics``: 'world <letter> ...') and an
    io node publishing each camera's SkeletonArray, collecting the fused ones and /diagnostics,
    on one executor."""

    def __init__(self, ros, ns, statics):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy

        from pose_perception.msg import SkeletonArray
        from pose_perception.ros.people_fusion_node import PeopleFusionNode

        letters = [t.split()[1] for t in statics]
        self.node = PeopleFusionNode(namespace=ns, parameter_overrides=[
            Parameter("cameras", value=[f"{ns}/{c}" for c in letters]),
            Parameter("fusion_frame", value="world"),
            Parameter("static_transforms", value=statics)])
        self.io = ros.create_node("io", namespace=ns)
        qos = QoSProfile(depth=5, reliability=QoSReliabilityPolicy.RELIABLE)
        self.pubs = {c: self.io.create_publisher(SkeletonArray, f"{c}/people/skeletons", qos)
                     for c in letters}
        self.got, self.diags = [], {}
        self.io.create_subscription(SkeletonArray, "fused/skeletons", self.got.append, qos)
        self.io.create_subscription(DiagnosticArray, "/diagnostics",
                                    lambda m: self.diags.update({s.name: s for s in m.status}),
                                    10)
        self.ex = SingleThreadedExecutor()
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)

    def array(self, camera: str, stamp_s: float, people=()):
        """A SkeletonArray of ``camera`` (frame_id: its letter) at ``stamp_s``."""
        from pose_perception.msg import SkeletonArray
        from pose_perception.ros.conversions import person_to_skeleton, sec_to_stamp
        msg = SkeletonArray(depth_used=True)
        msg.header.frame_id = camera
        msg.header.stamp = sec_to_stamp(stamp_s)
        msg.skeletons = [person_to_skeleton(p, msg.header) for p in people]
        return msg

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def spin(self, seconds: float) -> None:
        t = time.monotonic() + seconds
        while time.monotonic() < t:
            self.ex.spin_once(timeout_sec=0.005)

    def close(self) -> None:
        self.node.destroy_node()
        self.io.destroy_node()


def _measured_person(xyz, track_id):
    """A Person of 33 joints, all measured by depth (sigma 2 cm)."""
    from pose_perception.core.types import SOURCE_DEPTH, Keypoints, Person
    kp = Keypoints("blazepose33", np.zeros((33, 2)), np.full(33, 0.9))
    kp.init_3d()
    kp.xyz[:] = xyz
    kp.xyz_valid[:], kp.xyz_sigma[:], kp.xyz_source[:] = True, 0.02, SOURCE_DEPTH
    return Person(body=kp, box=np.array([0, 0, 10, 10.0]), score=0.9, track_id=track_id)


def test_wrong_transform_and_clock_offset_are_diagnosed_without_phantoms(ros):
    """In one process: cameras a and b right, c's transform 0.3 m off, d's clock 2 s ahead."""
    ns = f"/pf{int(time.time() * 1000) % 100000}"
    statics = [f"world {c} 0 0 0 0 0 0 1" for c in "abd"] + ["world c 0.3 0 0 0 0 0 1"]
    f = _InProcess(ros, ns, statics)
    rng = np.random.default_rng(0)
    centre = np.array([2.0, 0.0, 1.0])
    shape = rng.uniform(-0.2, 0.2, (33, 3))
    try:
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            now = f.now()
            for c, pub in f.pubs.items():
                # in its own frame: c's frame is (wrongly) said to be 0.3 m ahead of the others
                p = _measured_person(centre + shape + rng.normal(0, 0.01, (33, 3)), 1)
                pub.publish(f.array(c, now + (2.0 if c == "d" else 0.0), [p]))
            f.spin(1 / 30)
        assert len(f.got) > 20
        for m in f.got[-10:]:
            assert len(m.skeletons) == 1, "a phantom person"
            assert sorted(m.skeletons[0].cameras) == [f"{ns}/{c}" for c in "abc"]
        by_cam = {c: next(s for n, s in f.diags.items() if n.endswith(f"camera {ns}/{c}"))
                  for c in "abcd"}
        assert "wrong transform" in by_cam["c"].message
        assert "wrong transform" not in by_cam["a"].message
        assert "future" in by_cam["d"].message and "clock offset" in by_cam["d"].message
    finally:
        f.close()


def test_has_face_follows_the_cameras_and_people_without_3d_are_no_phantoms(ros):
    """Person 1 has a face in camera a only, person 2 in none; camera b also sends a 2D-only
    person (a frame processed without depth): fused has_face [True, False], two people."""
    from pose_perception.core.types import Keypoints, Person

    ns = f"/pff{int(time.time() * 1000) % 100000}"
    f = _InProcess(ros, ns, ["world a 0 0 0 0 0 0 1", "world b 0 0 0 0 0 0 1"])
    rng = np.random.default_rng(1)
    shape = rng.uniform(-0.2, 0.2, (33, 3))
    try:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            now = f.now()
            for c, pub in f.pubs.items():
                people = [_measured_person(np.array([x, 0.0, 1.0]) + shape
                                           + rng.normal(0, 0.01, (33, 3)), tid)
                          for tid, x in ((1, 2.0), (2, 3.0))]
                if c == "b":
                    flat = Keypoints("blazepose33", np.full((33, 2), 5.0), np.full(33, 0.9))
                    flat.init_3d()
                    people.append(Person(body=flat, box=np.array([0, 0, 10, 10.0]), score=0.9,
                                         track_id=3))
                msg = f.array(c, now, people)
                msg.skeletons[0].has_face = c == "a"          # person 1's face, camera a only
                pub.publish(msg)
            f.spin(1 / 30)
        assert len(f.got) > 10
        for m in f.got[-10:]:
            assert len(m.skeletons) == 2, "a phantom person"
            by_x = sorted(m.skeletons, key=lambda s: s.centroid.x)
            assert [s.has_face for s in by_x] == [True, False]
            assert all(sorted(s.cameras) == [f"{ns}/a", f"{ns}/b"] for s in by_x)
    finally:
        f.close()
