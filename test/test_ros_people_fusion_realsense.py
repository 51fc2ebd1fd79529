"""The fusion on real frames, three processes: two pose nodes (the real models) and the fusion node,
each its own process, started as the command line does (`pose-perception node|fusion --ros-args`).

The RealSense frames of two real people (`rgbd_dev/realsense_two_people`) are republished by this
process as two cameras: `/cam_a` as recorded, `/cam_b` rolled 180 degrees about its optical axis
(colour and depth turned upside down, the principal point moved with them), which is a real rigid
transform between the two cameras: the fusion node knows it only from its static transforms
(`world -> cam_a_optical`, `cam_a_optical -> cam_b_optical`). Each pose node finds the people in
its own optical frame; only with that transform do the two cameras' people meet (without it,
camera B's people would land mirrored through the optical axis, 0.35 m or more from every person
camera A sees). Shown: one fused person per real person (2, not 4), both cameras in
every fused person's `cameras`, the ids kept, and every process exits 0 on SIGINT / SIGTERM."""
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from model_env import require_models
from ros_env import isolated_domain_id, require_ros
from test_ros_people_fusion import _stop

pytestmark = [pytest.mark.ros, pytest.mark.models, pytest.mark.slow]

RATE_HZ = 3.0             # frames a second per camera: light for a 2-core CI
N_FRAMES = 10             # the recording's 10 frames, looped
TIMEOUT_S = 90.0          # model loading of two pose nodes on a shared 2-core machine
FUSED_WANTED = 6          # fused arrays with both people seen by both cameras
# cam_a: 1.2 m above the world origin looking along x (optical: x right, y down, z forward)
R_WORLD_A = np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, -1.0, 0]])
P_WORLD_A = np.array([0.0, 0.0, 1.2])
R_A_B = np.diag([-1.0, -1.0, 1.0])     # cam_b: cam_a rolled 180 degrees about its optical axis


def _rolled(frame):
    """The frame as seen by a camera rolled 180 degrees about its optical axis."""
    info = dict(frame.camera_info)
    K = list(info["K"])
    K[2] = info["image_width"] - 1 - K[2]
    K[5] = info["image_height"] - 1 - K[5]
    info["K"] = K
    return SimpleNamespace(rgb=np.ascontiguousarray(frame.rgb[::-1, ::-1]),
                           depth=np.ascontiguousarray(frame.depth[::-1, ::-1]),
                           depth_encoding=frame.depth_encoding, camera_info=info)


def _static(parent, child, R, p):
    from pose_perception.core import geometry as tfm
    return " ".join([parent, child] + [f"{v:.9g}" for v in [*p, *tfm.matrix_to_quat(R)]])


def _centroids(msg, R=np.eye(3), p=np.zeros(3)):
    return [R @ [s.centroid.x, s.centroid.y, s.centroid.z] + p
            for s in msg.skeletons if s.centroid_valid]


def test_two_real_cameras_one_fused_person_per_real_person(shared_data, tmp_path):
    require_ros()
    require_models()
    folder = shared_data / "rgbd_dev" / "realsense_two_people"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    isolated_domain_id()
    import rclpy
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from pose_perception.msg import SkeletonArray
    from pose_perception.ros.sample_camera_node import frame_messages
    from pose_perception.sources.rgbd_folder import load_rgbd_folder

    frames = load_rgbd_folder(folder)[:N_FRAMES]
    cameras = {"/cam_a": ("cam_a_optical", frames),
               "/cam_b": ("cam_b_optical", [_rolled(f) for f in frames])}
    params = tmp_path / "fusion.yaml"
    statics = [_static("world", "cam_a_optical", R_WORLD_A, P_WORLD_A),
               _static("cam_a_optical", "cam_b_optical", R_A_B, np.zeros(3))]
    params.write_text("people_fusion:\n  ros__parameters:\n"
                      "    cameras: ['/cam_a', '/cam_b']\n"
                      "    fusion_frame: world\n"
                      "    static_transforms: [" + ", ".join(f'"{s}"' for s in statics) + "]\n"
                      f"    max_age_s: {3.0 / RATE_HZ}\n")
    cli = [sys.executable, "-m", "pose_perception.cli"]
    procs = {"fusion": subprocess.Popen(cli + ["fusion", "--ros-args", "--params-file",
                                               str(params)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)}
    for ns in cameras:
        procs[ns] = subprocess.Popen(
            cli + ["node", "--ros-args", "-r", f"__ns:={ns}", "-p", "use_gpu:=false",
                   "-p", f"camera_namespace:={ns}/camera", "-p", "qos_reliability:=reliable"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    fused, per_cam = [], {ns: [] for ns in cameras}
    rcs = {}
    t_start = time.monotonic()
    rclpy.init()
    try:
        node = rclpy.create_node("realsense_rig")
        qos = QoSProfile(depth=5, reliability=QoSReliabilityPolicy.RELIABLE)
        node.create_subscription(SkeletonArray, "/fused/skeletons", fused.append, qos)
        pubs = {}
        for ns in cameras:
            node.create_subscription(SkeletonArray, f"{ns}/people/skeletons",
                                     per_cam[ns].append, qos)
            pubs[ns] = [node.create_publisher(t, f"{ns}/camera/{name}", qos) for t, name in (
                (Image, "color/image_raw"), (CameraInfo, "color/camera_info"),
                (Image, "aligned_depth_to_color/image_raw"),
                (CameraInfo, "aligned_depth_to_color/camera_info"))]

        def both_cameras(m):
            return len(m.skeletons) == 2 and all(sorted(s.cameras) == ["/cam_a", "/cam_b"]
                                                 for s in m.skeletons)
        i, first_both = 0, None
        while time.monotonic() - t_start < TIMEOUT_S:
            stamp = node.get_clock().now().nanoseconds * 1e-9     # one stamp for both cameras
            for ns, (frame_id, fr) in cameras.items():
                for pub, msg in zip(pubs[ns], frame_messages(fr[i % len(fr)], stamp, frame_id)):
                    pub.publish(msg)
            i += 1
            end = time.monotonic() + 1.0 / RATE_HZ
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.02)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            assert not dead, f"{dead} exited early:\n" + procs[dead[0]].stdout.read()[-3000:]
            if first_both is None:
                first_both = next((k for k, m in enumerate(fused) if both_cameras(m)), None)
                if first_both is not None:
                    t_both = time.monotonic() - t_start
            if first_both is not None and sum(map(both_cameras, fused)) >= FUSED_WANTED:
                break
        assert first_both is not None, (f"no fused array with both people seen by both cameras "
                                        f"in {TIMEOUT_S:.0f} s: {len(fused)} fused, "
                                        f"{[len(v) for v in per_cam.values()]} per camera")
        both = [m for m in fused if both_cameras(m)]
        assert len(both) >= FUSED_WANTED, f"{len(both)} of {len(fused)} fused with both cameras"
        ids = set()
        for m in fused[first_both:]:
            assert m.header.frame_id == "world"
            assert len(m.skeletons) == 2, f"{len(m.skeletons)} fused people: phantom or lost"
            ids |= {s.track_id for s in m.skeletons}
        assert len(ids) == 2, f"track ids not kept: {sorted(ids)}"
        # the fused people sit where each camera, through its known transform, sees them
        R_WORLD_B = R_WORLD_A @ R_A_B
        last = both[-1]
        fused_c = _centroids(last)
        assert len(fused_c) == 2 and np.linalg.norm(fused_c[0] - fused_c[1]) > 0.5
        seen = {"/cam_a": _centroids(per_cam["/cam_a"][-1], R_WORLD_A, P_WORLD_A),
                "/cam_b": _centroids(per_cam["/cam_b"][-1], R_WORLD_B, P_WORLD_A)}
        for ns, cs in seen.items():
            assert len(cs) == 2, f"{ns} sees {len(cs)} people"
            for c in fused_c:
                assert min(np.linalg.norm(c - x) for x in cs) < 0.1, (ns, c, cs)
        # without the roll, camera B's people would not meet camera A's: the transform matters
        wrong_b = _centroids(per_cam["/cam_b"][-1], R_WORLD_A, P_WORLD_A)
        assert all(min(np.linalg.norm(c - x) for c in fused_c) > 0.25 for x in wrong_b)
        # has_face of a fused person: a camera found that person's face
        cam_faces = {s.has_face for v in per_cam.values() for m in v[-3:] for s in m.skeletons}
        assert {s.has_face for m in both[-3:] for s in m.skeletons} <= cam_faces | {False}
        assert any(s.has_face for m in both for s in m.skeletons) == (True in cam_faces)
        print(f"\nfirst fused array with both cameras after {t_both:.1f} s; "
              f"{len(fused)} fused arrays, {len(both)} with both people seen by both cameras; "
              f"fused centroids {[np.round(c, 2).tolist() for c in fused_c]}; has_face "
              f"{[s.has_face for s in last.skeletons]}")
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
        for name, p in procs.items():
            rcs[name] = _stop(p, signal.SIGTERM if name == "fusion" else signal.SIGINT)
    outs = {n: p.stdout.read() for n, p in procs.items()}
    for name, rc in rcs.items():
        assert rc == 0, f"{name} exited {rc}:\n{outs[name][-3000:]}"
        assert "Traceback" not in outs[name], outs[name][-3000:]
