"""pose_node with real rclpy topics and a fake pipeline (no models): synchronisation, depth
handling (units, registered / unregistered), CameraInfo missing, bad input, exceptions, output
frame via TF, newest-frame-wins latency policy, diagnostics, parameter validation."""
import itertools
import time

import numpy as np
import pytest

from ros_env import require_ros  # noqa: F401

pytestmark = pytest.mark.ros

W, H = 160, 120
FX = 100.0
_ns = itertools.count()


class FakePerception:
    """Same interface as core.perception.Perception. One person whose keypoints sit on a grid;
    3D = depth at each keypoint pixel back-projected with the camera (so units and alignment of
    the node's depth handling are visible in the output)."""

    provider = "FakeExecutionProvider"

    def __init__(self, config, delay_s=0.0, fail_when=None):
        self.config, self.delay_s, self.fail_when = config, delay_s, fail_when
        self.calls = []

    def process(self, rgb, stamp_s, depth_m=None, camera=None, depth_camera=None):
        from pose_perception.core.types import FrameResult, Keypoints, Person
        self.calls.append(dict(stamp=stamp_s, shape=rgb.shape, rgb00=rgb[0, 0].copy(),
                               depth=None if depth_m is None else depth_m.copy(),
                               camera=camera, depth_camera=depth_camera))
        if self.fail_when is not None and self.fail_when(rgb):
            raise RuntimeError("fake pipeline failure")
        if self.delay_s:
            time.sleep(self.delay_s)
        xy = np.stack([np.linspace(40, 120, 33), np.linspace(30, 90, 33)], 1)
        kps = Keypoints("blazepose33", xy, np.full(33, 0.9))
        if depth_m is not None and camera is not None:
            kps.init_3d()
            z = depth_m[np.round(xy[:, 1]).astype(int), np.round(xy[:, 0]).astype(int)]
            kps.xyz[:] = camera.backproject_pixels(xy, z)
            kps.xyz_valid[:] = np.isfinite(z)
            kps.xyz[~kps.xyz_valid] = np.nan
            kps.xyz_sigma[:] = np.where(kps.xyz_valid, 0.01, np.nan)
            kps.xyz_source[:] = np.where(kps.xyz_valid, 1, 0)
        res = FrameResult(persons=[Person(kps, np.array([40, 30, 120, 90.0]), 0.9,
                                          track_id=1)],
                          interactions=list(getattr(self, "interactions", [])),
                          events=list(getattr(self, "events", [])))
        self.last_up = tuple(getattr(self, "up", (0.0, -1.0, 0.0)))
        res.timings_ms["total"] = 1.0
        return res


def _stamp(t):
    from pose_perception.ros.conversions import sec_to_stamp
    return sec_to_stamp(t)


def colour_msg(t, frame="cam_optical", value=100, encoding="rgb8"):
    from std_msgs.msg import Header

    from pose_perception.ros.conversions import array_to_image_msg
    img = np.full((H, W, 3), value, np.uint8)
    return array_to_image_msg(img, encoding, Header(stamp=_stamp(t), frame_id=frame))


def depth_msg(t, metres=1.5, frame="cam_optical", encoding="16UC1", size=(W, H)):
    from std_msgs.msg import Header

    from pose_perception.ros.conversions import array_to_image_msg
    w, h = size
    arr = (np.full((h, w), int(metres * 1000), np.uint16) if encoding == "16UC1"
           else np.full((h, w), metres, np.float32))
    return array_to_image_msg(arr, encoding, Header(stamp=_stamp(t), frame_id=frame))


def info_msg(frame="cam_optical", size=(W, H), f=FX):
    from std_msgs.msg import Header

    from pose_perception.core.camera import CameraModel
    from pose_perception.ros.conversions import camera_model_to_info
    w, h = size
    m = CameraModel(w, h, [f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1], None, "none")
    return camera_model_to_info(m, Header(frame_id=frame))


class FakeTwoHalves(FakePerception):
    """The fake with Perception's two halves, so that the node overlaps frames: ``detect``
    does nothing, ``finish`` is the fake's whole work (``fail_when`` raises there, on the
    overlap thread)."""

    def __init__(self, config, **kw):
        super().__init__(config, **kw)
        self.attention_target, self.up = (0.0, 0.0, 0.0), (0.0, -1.0, 0.0)
        self.finished_on = set()

    def detect(self, rgb, stamp_s, depth_m=None, camera=None, depth_camera=None):
        from pose_perception.core.types import FrameResult
        r = FrameResult()
        r.rgb = rgb
        return r

    def finish(self, result, stamp_s, depth_m=None, camera=None, depth_camera=None,
               attention_target=None, up=None):
        import threading
        self.finished_on.add(threading.current_thread().name)
        self.up = up
        done = self.process(result.rgb, stamp_s, depth_m, camera, depth_camera)
        result.persons, result.timings_ms = done.persons, done.timings_ms
        return result


class Harness:
    """A PoseNode (fake pipeline) + an I/O node in a fresh namespace, one executor."""

    def __init__(self, ros, params=None, fake_cls=None, **fake_kwargs):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        from pose_perception.msg import FaceLandmarksArray, SkeletonArray
        from pose_perception.ros.pose_node import PoseNode

        self.ns = f"/pn{next(_ns)}_{int(time.time() * 1000) % 100000}"
        p = {"camera_namespace": self.ns + "/camera", "diagnostics_period_s": 0.2,
             "depth_wait_s": 0.5}
        p.update(params or {})
        self.fake = None

        # looked up now, not at definition: real_perception_harness swaps FakePerception
        fake_cls = fake_cls or FakePerception

        def factory(cfg):
            self.fake = fake_cls(cfg, **fake_kwargs)
            return self.fake
        self.node = PoseNode(factory, namespace=self.ns,
                             parameter_overrides=[Parameter(k, value=v) for k, v in p.items()])
        self.io = ros.create_node("io", namespace=self.ns)
        qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        cam = self.ns + "/camera/"
        self.pub = {"color": self.io.create_publisher(Image, cam + "color/image_raw", qos),
                    "info": self.io.create_publisher(CameraInfo, cam + "color/camera_info", qos),
                    "depth": self.io.create_publisher(
                        Image, cam + "aligned_depth_to_color/image_raw", qos),
                    "dinfo": self.io.create_publisher(
                        CameraInfo, cam + "aligned_depth_to_color/camera_info", qos)}
        self.skeletons, self.faces, self.markers, self.debug, self.diag = [], [], [], [], []
        self.io.create_subscription(SkeletonArray, "people/skeletons", self.skeletons.append, 10)
        self.io.create_subscription(FaceLandmarksArray, "people/faces", self.faces.append, 10)
        self.io.create_subscription(MarkerArray, "people/markers", self.markers.append, 10)
        self.io.create_subscription(Image, "people/debug_image", self.debug.append, 10)
        self.io.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.ex = SingleThreadedExecutor()
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        need = ["color", "info"] + (["depth", "dinfo"] if self.node.p["use_depth"] else [])
        self.spin_until(lambda: all(self.pub[k].get_subscription_count() > 0 for k in need),
                        "camera topics connected")

    def _on_diag(self, msg):
        for st in msg.status:
            if st.name.endswith(self.node.get_name()) and \
                    st.hardware_id == self.node.get_fully_qualified_name():
                self.diag.append(st)

    def spin_until(self, cond, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {what}")
            self.ex.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ex.spin_once(timeout_sec=0.02)

    def send(self, t, depth=True, info=True, **kw):
        if info:
            self.pub["info"].publish(info_msg())
        if depth:
            self.pub["dinfo"].publish(info_msg())
            self.pub["depth"].publish(depth_msg(t, **kw))
        self.pub["color"].publish(colour_msg(t))

    def last_diag_values(self):
        st = self.diag[-1]
        return st, {kv.key: kv.value for kv in st.values}

    def close(self):
        self.node.destroy_node()
        self.io.destroy_node()


def test_rgbd_pairs_give_3d_skeletons_markers_debug_image_and_diagnostics(harness):
    from diagnostic_msgs.msg import DiagnosticStatus
    h = harness()
    t0 = 1000.0
    h.send(t0)
    h.spin_until(lambda: h.skeletons, "first SkeletonArray")
    for i in range(1, 4):
        h.send(t0 + i / 30)
        h.spin_until(lambda: len(h.skeletons) > i, f"SkeletonArray {i}")
    sk = h.skeletons[-1]
    assert sk.depth_used and sk.header.frame_id == "cam_optical"
    assert (sk.header.stamp.sec, sk.header.stamp.nanosec) == \
        (_stamp(t0 + 3 / 30).sec, _stamp(t0 + 3 / 30).nanosec)
    k = sk.skeletons[0].keypoints[10]
    assert k.position_valid and k.position.z == pytest.approx(1.5)   # 1500 mm in 16UC1
    assert k.position.x == pytest.approx((k.x - (W - 1) / 2) / FX * 1.5, abs=1e-4)
    call = h.fake.calls[-1]
    assert call["shape"] == (H, W, 3) and call["depth_camera"] is None
    assert call["camera"].fx == FX
    h.spin_until(lambda: h.diag, "diagnostics")
    h.send(t0 + 5)
    h.spin_until(lambda: h.markers and h.debug, "markers and debug image")
    assert any(m.ns == "joints" for m in h.markers[-1].markers)
    assert (h.debug[-1].width, h.debug[-1].height, h.debug[-1].encoding) == (W, H, "rgb8")
    h.spin_for(0.3)
    st, values = h.last_diag_values()
    assert st.level == DiagnosticStatus.OK, st.message
    assert values["execution provider"] == "FakeExecutionProvider"
    assert values["depth path"] == "registered, same grid as colour"
    assert int(values["processed"]) >= 5
    assert "end-to-end (image stamp -> published) latency p50/p95/max [ms]" in values


def test_depth_units_32fc1_and_unit_scale(harness):
    h = harness({"depth_unit_scale": 0.0001})      # 16UC1 in tenths of a millimetre
    h.send(2000.0, metres=0.15)                    # 150 units -> 0.015 m ... * 10 = 1500
    h.spin_until(lambda: h.skeletons, "skeletons")
    # 150 raw units x 0.0001 m = 0.015 m < depth_min_m: invalid -> no 3D
    assert not h.skeletons[-1].skeletons[0].keypoints[3].position_valid
    h.pub["depth"].publish(depth_msg(2001.0, metres=2.25, encoding="32FC1"))
    h.pub["color"].publish(colour_msg(2001.0))
    h.spin_until(lambda: len(h.skeletons) > 1, "second skeletons")
    # unit_scale applies to 32FC1 too: 2.25 x 1e-4 -> below depth_min_m
    assert not h.skeletons[-1].skeletons[0].keypoints[3].position_valid
    h2 = harness()
    h2.pub["info"].publish(info_msg())
    h2.pub["depth"].publish(depth_msg(3000.0, metres=2.25, encoding="32FC1"))
    h2.pub["color"].publish(colour_msg(3000.0))
    h2.spin_until(lambda: h2.skeletons, "skeletons (32FC1)")
    assert h2.skeletons[-1].skeletons[0].keypoints[3].position.z == pytest.approx(2.25)


def test_missing_camera_info_publishes_2d_and_warns(harness):
    from diagnostic_msgs.msg import DiagnosticStatus
    h = harness()
    for i in range(3):
        h.send(500.0 + i * 0.1, info=False)
        h.spin_until(lambda: len(h.skeletons) > i, "skeletons without CameraInfo")
    sk = h.skeletons[-1]
    assert not sk.depth_used
    assert not any(k.position_valid for k in sk.skeletons[0].keypoints)
    assert sk.skeletons[0].keypoints[0].x == pytest.approx(40.0)       # 2D still published
    h.spin_until(lambda: h.diag and h.diag[-1].level == DiagnosticStatus.WARN, "WARN")
    assert "no CameraInfo received on" in h.diag[-1].message
    assert h.fake.calls[-1]["camera"] is None


def test_bad_input_and_pipeline_exceptions_never_kill_the_node(harness):
    h = harness(fail_when=lambda rgb: rgb[0, 0, 0] == 7)
    h.pub["info"].publish(info_msg())
    bad = colour_msg(10.0)
    bad.step = 5                                      # < width * 3
    h.pub["color"].publish(bad)
    h.pub["depth"].publish(depth_msg(10.0))
    short = colour_msg(11.0)
    short.data = bytes(short.data[:100])              # data too short
    h.pub["color"].publish(short)
    h.pub["depth"].publish(depth_msg(11.0))
    weird = colour_msg(12.0, encoding="rgb8")
    weird.encoding = "bayer_grbg8"
    h.pub["color"].publish(weird)
    h.pub["depth"].publish(depth_msg(12.0))
    h.spin_for(0.5)
    h.pub["color"].publish(colour_msg(13.0, value=7))  # the fake pipeline raises on this one
    h.pub["depth"].publish(depth_msg(13.0))
    h.spin_for(0.5)
    assert h.skeletons == []
    h.send(14.0)
    h.spin_until(lambda: h.skeletons, "a good frame after the bad ones")
    h.spin_until(lambda: h.diag and "frame errors" in h.last_diag_values()[1], "diag counts")
    st, values = h.last_diag_values()
    assert int(values["decode errors"]) >= 1 and int(values["frame errors"]) == 1
    assert h.node._worker.is_alive()


@pytest.mark.parametrize("mode,overlap", [("always", True), ("never", False), ("auto", False)])
def test_overlapped_frames_publish_in_order_and_their_errors_are_reported(harness, mode, overlap):
    """frame_overlap: the second half of a frame (and its publishing) runs on its own thread;
    frames come out in order, a failure there is a counted frame error, the node goes on.
    auto: the fake's provider is no GPU one, so one frame at a time."""
    h = harness({"frame_overlap": mode}, fake_cls=FakeTwoHalves,
                fail_when=lambda rgb: rgb[0, 0, 0] == 7)
    assert (h.node._overlap is not None) == overlap
    h.pub["info"].publish(info_msg())
    h.spin_for(0.1)
    sent = []
    for i in range(6):
        t = 200.0 + 0.5 * i
        h.pub["dinfo"].publish(info_msg())
        h.pub["depth"].publish(depth_msg(t))
        h.pub["color"].publish(colour_msg(t, value=7 if i == 2 else 100))
        if i != 2:
            sent.append(t)
        h.spin_until(lambda: len(h.fake.calls) > i, f"frame {i} processed")
    h.spin_until(lambda: len(h.skeletons) == len(sent), "every good frame published")
    got = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in h.skeletons]
    assert got == pytest.approx(sent)
    assert all(len(m.skeletons) == 1 for m in h.skeletons)
    threads = h.fake.finished_on
    if overlap:
        assert threads and all(n.startswith("perception_finish") for n in threads)
    else:      # process() on the worker thread: the halves are not used
        assert not threads
    h.spin_until(lambda: h.diag and int(h.last_diag_values()[1].get("frame errors", 0)) == 1,
                 "the failed frame counted")
    assert h.node._worker.is_alive()


def test_rgb_only_mode(harness):
    h = harness({"use_depth": False})
    h.pub["info"].publish(info_msg())
    h.spin_for(0.2)
    h.pub["color"].publish(colour_msg(20.0))
    h.spin_until(lambda: h.skeletons, "RGB-only skeletons")
    assert not h.skeletons[-1].depth_used
    assert h.fake.calls[-1]["depth"] is None and h.fake.calls[-1]["camera"] is not None


def test_target_frame_via_static_transform_and_missing_transform(harness):
    h = harness({"target_frame": "base_link",
                 "static_transforms": ["base_link cam_optical 0 0 1.2 -0.5 0.5 -0.5 0.5"]})
    h.send(30.0)
    h.spin_until(lambda: h.skeletons, "skeletons in base_link")
    sk = h.skeletons[-1]
    assert sk.header.frame_id == "base_link"
    k = sk.skeletons[0].keypoints[10]
    assert k.position.x == pytest.approx(1.5, abs=1e-4)                 # optical z -> x
    assert k.position.z == pytest.approx(1.2 - (k.y - (H - 1) / 2) / FX * 1.5, abs=1e-4)
    h2 = harness({"target_frame": "map"})
    h2.send(31.0)
    h2.spin_until(lambda: h2.skeletons, "skeletons without transform")
    assert h2.skeletons[-1].header.frame_id == "cam_optical"
    h2.spin_until(lambda: h2.diag and "target_frame 'map'" in h2.diag[-1].message,
                  "target_frame warning")


def test_unregistered_depth_is_reprojected_with_extrinsics(harness):
    # depth camera: 80x60, 5 cm to the left of the colour camera, same orientation
    h = harness({"depth_registered": False,
                 "static_transforms": ["cam_optical depth_optical -0.05 0 0 0 0 0 1"]})
    h.pub["info"].publish(info_msg())
    h.pub["dinfo"].publish(info_msg("depth_optical", size=(80, 60), f=50.0))
    h.spin_for(0.2)
    h.pub["depth"].publish(depth_msg(40.0, metres=2.0, frame="depth_optical", size=(80, 60)))
    h.pub["color"].publish(colour_msg(40.0))
    h.spin_until(lambda: h.skeletons, "skeletons from unregistered depth")
    call = h.fake.calls[-1]
    d = call["depth"]
    assert d.shape == (H, W) and call["depth_camera"] is None
    # a plane at 2 m seen from 5 cm to the side stays at 2 m; its edge shifts by f*b/z = 2.5 px
    assert np.nanmedian(d) == pytest.approx(2.0, abs=1e-3)
    assert np.isnan(d[:, -1]).all() and np.isfinite(d[:, :W - 5]).all()
    h.spin_until(lambda: h.diag, "diagnostics")
    h.spin_for(0.25)
    assert h.last_diag_values()[1]["depth path"].startswith("unregistered, reprojected")
    # without the extrinsics: 2D only and the reason in the diagnostics
    h2 = harness({"depth_registered": False})
    h2.pub["info"].publish(info_msg())
    h2.pub["dinfo"].publish(info_msg("depth_optical", size=(80, 60), f=50.0))
    h2.spin_for(0.2)
    h2.pub["depth"].publish(depth_msg(41.0, frame="depth_optical", size=(80, 60)))
    h2.pub["color"].publish(colour_msg(41.0))
    h2.spin_until(lambda: h2.skeletons, "2D skeletons")
    assert not h2.skeletons[-1].depth_used
    h2.spin_until(lambda: h2.diag and "depth not aligned and no extrinsics" in
                  h2.diag[-1].message, "alignment warning")
    # a depth image of another size than its CameraInfo: 2D, the reason, and the node goes on
    h.pub["depth"].publish(depth_msg(42.0, metres=2.0, frame="depth_optical", size=(64, 48)))
    h.pub["color"].publish(colour_msg(42.0))
    h.spin_until(lambda: any(s.header.stamp.sec == 42 for s in h.skeletons), "2D skeletons")
    assert not [s for s in h.skeletons if s.header.stamp.sec == 42][-1].depth_used
    h.spin_until(lambda: h.diag and "does not match its CameraInfo" in h.diag[-1].message,
                 "size warning")


def test_newest_frame_wins_and_older_ones_are_dropped(harness):
    h = harness(delay_s=0.25)
    h.pub["info"].publish(info_msg())
    h.spin_for(0.1)
    n = 15
    for i in range(n):
        h.send(100.0 + i * 0.02, info=False)
        h.spin_for(0.02)
    last = 100.0 + (n - 1) * 0.02
    h.spin_until(lambda: h.skeletons and abs(
        h.skeletons[-1].header.stamp.sec + h.skeletons[-1].header.stamp.nanosec * 1e-9
        - last) < 1e-6, "the newest frame published", timeout=5)
    stamps = [c["stamp"] for c in h.fake.calls]
    assert len(stamps) < n / 2, f"processed {len(stamps)} of {n}: a backlog was worked off"
    assert stamps == sorted(stamps) and stamps[-1] == pytest.approx(last)
    h.spin_until(lambda: h.diag and "dropped" in h.last_diag_values()[1], "dropped count")
    assert int(h.last_diag_values()[1]["dropped"]) >= n - len(stamps) - 1


def test_stale_frames_dropped_but_a_bag_loop_starts_over(harness):
    h = harness()
    h.send(50.0)
    h.spin_until(lambda: len(h.skeletons) == 1, "first")
    h.send(49.9)                                   # older than what was published: dropped
    h.spin_for(0.3)
    assert len(h.skeletons) == 1
    h.send(10.0)                                   # 40 s back: the recording looped
    h.spin_until(lambda: len(h.skeletons) == 2, "after the loop")
    assert h.skeletons[-1].header.stamp.sec == 10


def test_colour_processed_alone_when_depth_never_pairs(harness):
    h = harness({"sync_slop_s": 0.02, "depth_wait_s": 0.3})
    h.pub["info"].publish(info_msg())
    t = 300.0
    end = time.monotonic() + 1.2
    while time.monotonic() < end:
        # 0.25 s older: at least 0.05 s from every colour stamp, beyond the slop
        h.pub["depth"].publish(depth_msg(t - 0.25))
        h.pub["color"].publish(colour_msg(t))
        t += 0.1
        h.spin_for(0.1)
    h.spin_until(lambda: h.skeletons, "colour-only skeletons")
    assert not h.skeletons[-1].depth_used
    h.spin_until(lambda: h.diag and "not synchronised" in h.diag[-1].message, "sync warning")
    import re
    m = re.search(r"latest stamps differ by \+(\d\.\d+) s \(sync_slop_s = 0.02 s\)",
                  h.diag[-1].message)
    assert m and float(m.group(1)) >= 0.25 - 1e-9, h.diag[-1].message


def test_use_gpu_false_keeps_the_cpu_providers_it_was_given(ros):
    """use_gpu false: the pipeline gets the CPU providers of ``providers`` (OpenVINO where
    listed, onnxruntime's CPU), not the GPU ones; true: the list as it is."""
    from rclpy.parameter import Parameter

    from pose_perception.ros.pose_node import PoseNode

    def providers(**params):
        configs = []

        def factory(cfg):
            configs.append(cfg)
            return FakePerception(cfg)
        node = PoseNode(factory, namespace="/pv",
                        parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        node.destroy_node()
        return tuple(configs[0]["keypoints"]["providers"])
    assert providers(use_gpu=False) == ("cpu",)
    assert providers(use_gpu=False, providers=["tensorrt", "cuda", "openvino", "cpu"]) == (
        "openvino", "cpu")
    assert providers(providers=["cuda", "openvino", "cpu"]) == ("cuda", "openvino", "cpu")


def test_parameters_are_validated_with_clear_messages(ros):
    from rclpy.parameter import Parameter

    from pose_perception.ros.params import ParameterError
    from pose_perception.ros.pose_node import PoseNode

    def make(**params):
        return PoseNode(lambda cfg: FakePerception(cfg), namespace="/pv",
                        parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    with pytest.raises(ParameterError, match=r"unknown parameter 'use_dpeth' \(did you mean "
                                             r"'use_depth'\?\)"):
        make(use_dpeth=False)
    with pytest.raises(ParameterError, match=r"'qos_reliability' must be one of"):
        make(qos_reliability="sometimes")
    with pytest.raises(ParameterError, match=r"'sync_slop_s' must be >= 0"):
        make(sync_slop_s=-1.0)
    with pytest.raises(ParameterError, match=r"'use_depth' expected true or false"):
        make(use_depth=3)
    with pytest.raises(ParameterError, match="static_transforms"):
        make(static_transforms=["a b 1 2"])
    with pytest.raises(ParameterError, match="max_persons"):
        make(**{"perception.keypoints.max_persons": 0})
    with pytest.raises(ParameterError, match=r"'precision' must be one of"):
        make(precision="fp8")
    node = make(**{"sync_slop_s": 1, "perception.keypoints.max_persons": 2,
                   "perception.tracking.max_age_s": 3, "use_gpu": False, "precision": "fp16"})
    try:   # an integer for a float parameter is fine; perception.* reaches the pipeline config
        assert node.p["sync_slop_s"] == 1.0
        cfg = node.perception_config
        assert cfg["keypoints"]["max_persons"] == 2 and cfg["tracking"]["max_age_s"] == 3.0
        assert cfg["keypoints"]["providers"] == ("cpu",)
        assert cfg["keypoints"]["precision"] == "fp16"
        assert node.diag.facts["precision"] == "unknown"   # FakePerception has no precision
    finally:
        node.destroy_node()


def test_config_file_names_only_declared_parameters_with_their_defaults():
    require_ros()
    from pathlib import Path

    import yaml

    from pose_perception.ros.pose_node import node_param_specs, perception_param_specs
    from pose_perception.ros.safety_monitor_node import safety_config_specs, safety_node_specs
    from pose_perception.ros.sample_camera_node import camera_specs
    from pose_perception.ros.params import coerce

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" /
                          "pose_perception.yaml").read_text())

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield prefix + k, v
    for node, specs in (("/**/pose_node", node_param_specs() + perception_param_specs()),
                        ("/**/safety_monitor", safety_node_specs() + safety_config_specs()),
                        ("/**/sample_camera", camera_specs())):
        by_name = {s.name: s for s in specs}
        values = dict(flat(cfg[node]["ros__parameters"]))
        assert values, node
        for name, value in values.items():
            assert name in by_name, f"{node}: '{name}' is not a parameter"
            s = by_name[name]
            default = list(s.default) if isinstance(s.default, tuple) else s.default
            assert coerce(value, s.kind) == default, f"{node}: {name}"
