"""Faults around the models (missing, corrupt, GPU demanded but absent) at node start, and the
real pipeline inside pose_node with images 10x larger than the model inputs and tiny ones.
The start-up faults run ``pose_node`` as a process (``python -m pose_perception.ros.pose_node``)
exactly as ``ros2 run`` would."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ros_env import isolated_domain_id, require_ros
from model_env import require_models

pytestmark = pytest.mark.ros


def _models_dir_or_skip():
    return require_models()


def _gpu_available() -> bool:
    import onnxruntime as ort

    from pose_perception.core.inference import GPU_PROVIDERS
    return bool(set(ort.get_available_providers()) & GPU_PROVIDERS)


def run_pose_node(ros_args, env=None, timeout=120):
    require_ros()
    isolated_domain_id()
    return subprocess.run([sys.executable, "-m", "pose_perception.ros.pose_node", "--ros-args",
                           *ros_args], env=dict(os.environ, **(env or {})),
                          capture_output=True, text=True, timeout=timeout)


def the_error_line(proc):
    """The process failed with exactly one 'pose_node: ...' line and no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("pose_node:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_missing_model_file_at_start_is_one_clear_error(tmp_path):
    proc = run_pose_node(["-p", "use_gpu:=false"], {"POSE_PERCEPTION_MODEL_DIR": str(tmp_path)})
    line = the_error_line(proc)
    assert "model file pose_detection.onnx not found at" in line
    assert str(tmp_path) in line and "pose-perception provision" in line


def test_corrupt_model_file_at_start_is_one_clear_error(tmp_path):
    from pose_perception.core import model_store
    real = model_store.model_dir() / "pose_detection.onnx"
    # a download or conversion cut short: the first 3000 bytes of the real file (or junk)
    head = real.read_bytes()[:3000] if real.is_file() else b"\x08\x07" + bytes(3000)
    (tmp_path / "pose_detection.onnx").write_bytes(head)
    proc = run_pose_node(["-p", "use_gpu:=false"], {"POSE_PERCEPTION_MODEL_DIR": str(tmp_path)})
    line = the_error_line(proc)
    assert f"could not load ONNX model {tmp_path / 'pose_detection.onnx'}" in line
    assert "damaged or incomplete" in line and "pose-perception provision" in line


def test_required_gpu_that_is_not_there_fails_at_start():
    _models_dir_or_skip()
    if _gpu_available():
        pytest.skip("a GPU execution provider works here: nothing to refuse")
    proc = run_pose_node(["-p", "require_gpu:=true", "-p", "enable_face:=false"])
    line = the_error_line(proc)
    assert "a GPU execution provider is required but none works here" in line
    assert "require_gpu" in line


# ------------------------------------------------------------------ extreme image sizes
def _frame(shared):
    """(rgb, depth 16UC1 mm, K) of a real RGB-D frame with two people, or a noise image."""
    from pose_perception.sources.rgbd_folder import load_rgbd_folder
    folder = shared / "rgbd_dev" / "realsense_two_people" if shared else None
    if folder is not None and folder.is_dir():
        f = load_rgbd_folder(folder, limit=1)[0]
        return f.rgb, f.depth, list(f.camera_info["K"]), 2
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return rgb, np.full((480, 640), 2000, np.uint16), [600, 0, 320, 0, 600, 240, 0, 0, 1], None


@pytest.fixture(scope="module")
def shared_or_none():
    from conftest import SHARED_DATA
    return SHARED_DATA if SHARED_DATA.is_dir() else None


def test_real_pipeline_in_the_node_with_10x_and_tiny_images(ros, shared_or_none, capfd):
    import cv2
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from pose_perception.core.camera import CameraModel
    from pose_perception.msg import SkeletonArray
    from pose_perception.ros.conversions import (array_to_image_msg, camera_model_to_info,
                                                 sec_to_stamp)
    from pose_perception.ros.pose_node import PoseNode

    _models_dir_or_skip()
    ns = f"/big{os.getpid() % 10000}"
    node = PoseNode(namespace=ns, parameter_overrides=[
        Parameter("camera_namespace", value=ns + "/camera"),
        Parameter("providers", value=["cuda", "cpu"])])           # GPU asked for, CPU fallback
    io = ros.create_node("io", namespace=ns)
    qos = QoSProfile(depth=2, reliability=QoSReliabilityPolicy.RELIABLE)
    pub_c = io.create_publisher(Image, "camera/color/image_raw", qos)
    pub_i = io.create_publisher(CameraInfo, "camera/color/camera_info", qos)
    pub_d = io.create_publisher(Image, "camera/aligned_depth_to_color/image_raw", qos)
    got = []
    io.create_subscription(SkeletonArray, "people/skeletons", got.append, 5)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(io)

    def spin_until(cond, what, timeout):
        end = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            ex.spin_once(timeout_sec=0.02)

    try:
        spin_until(lambda: pub_c.get_subscription_count() and pub_d.get_subscription_count(),
                   "connected", 10)
        if not _gpu_available():     # a CPU-only onnxruntime: one info line, no warning
            err = capfd.readouterr().err
            assert "this onnxruntime build has no GPU support" in err and "WARN" not in err, err
        rgb, depth, K, people = _frame(shared_or_none)
        times = {}
        for t, scale in ((10.0, 10), (11.0, 1 / 40)):
            h, w = round(rgb.shape[0] * scale), round(rgb.shape[1] * scale)   # 4800x6400, 12x16
            c = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR if scale > 1
                           else cv2.INTER_AREA)
            d = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
            Ks = np.array(K, float).reshape(3, 3)
            Ks[:2] *= scale
            header = Header(stamp=sec_to_stamp(t), frame_id="cam")
            pub_i.publish(camera_model_to_info(CameraModel(w, h, Ks, None, "none"), header))
            spin_until(lambda: node._color_info is not None and node._color_info.width == w,
                       "CameraInfo", 10)
            cm, dm = array_to_image_msg(c, "rgb8", header), array_to_image_msg(d, "16UC1", header)
            n = len(got)
            t0 = time.perf_counter()
            pub_d.publish(dm)
            pub_c.publish(cm)
            spin_until(lambda: len(got) > n, f"skeletons of the {w}x{h} image", 60)
            times[(w, h)] = time.perf_counter() - t0
            sk = got[-1]
            assert sk.depth_used and (sk.header.stamp.sec, sk.header.frame_id) == (int(t), "cam")
            for s in sk.skeletons:
                for k in s.keypoints:
                    assert np.isfinite([k.x, k.y]).all() and 0 <= k.confidence <= 1
            if scale > 1 and people:
                assert len(sk.skeletons) == people
                z = [k.position.z for s in sk.skeletons for k in s.keypoints if k.position_valid]
                assert len(z) > 20 and 0.5 < np.median(z) < 5.0
        assert node._worker.is_alive()
        big = max(times)
        print(f"\npublish -> skeletons: {big[0]}x{big[1]}: {times[big]:.2f} s, "
              f"16x12: {times[min(times)]:.2f} s")
        assert times[big] < 30.0, times        # not "forever" (a 2-core CI machine)
    finally:
        node.destroy_node()
        io.destroy_node()
