"""pose_node under malformed and unexpected input, through real rclpy topics (fake pipeline, no
models): every bad message gives a rate-limited log line, a /diagnostics entry with the reason and
a counter, the frame is skipped (or processed in 2D where only depth or calibration is bad), and
the node goes on to process the next good frame. See docs/robustness.md for the item -> test map.
"""
import re

import numpy as np
import pytest

from ros_env import require_ros
from test_ros_pose_node import FX, H, W, FakePerception, colour_msg, depth_msg, info_msg

pytestmark = pytest.mark.ros


# ----------------------------------------------------------------------------- helpers
def record_logs(h):
    """Every line the node's RateLimitedLog lets through, as (level, text); still logged."""
    lines = []
    original = h.node._log.log_fn

    def log_fn(level, text):
        lines.append((level, text))
        original(level, text)
    h.node._log.log_fn = log_fn
    return lines


def diag_text(h, since=0):
    """All /diagnostics messages and issue values of the node since index ``since``."""
    out = []
    for st in h.diag[since:]:
        out.append(st.message)
        out += [kv.value for kv in st.values if kv.key.startswith("issue: ")]
    return "\n".join(out)


def counter(h, name):
    if not h.diag:
        return 0
    return int(h.last_diag_values()[1].get(name, 0))


def stamp_of(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def colour_image(t, rgb=(200, 100, 50), encoding="rgb8", size=(W, H), bigendian=False,
                 pad=0, frame="cam_optical"):
    """A uniform colour image in any encoding, optionally big-endian and with row padding."""
    import cv2
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rgb
    arr = {"rgb8": lambda: img, "bgr8": lambda: img[:, :, ::-1],
           "rgba8": lambda: cv2.cvtColor(img, cv2.COLOR_RGB2RGBA),
           "bgra8": lambda: cv2.cvtColor(img, cv2.COLOR_RGB2BGRA),
           "mono8": lambda: img[:, :, 0],
           "mono16": lambda: img[:, :, 0].astype(np.uint16) << 8,
           # 4:2:2 with Y = first channel and neutral chroma: a grey image
           "yuv422": lambda: np.dstack([np.full((h, w), 128, np.uint8), img[:, :, 0]]),
           "yuyv": lambda: np.dstack([img[:, :, 0], np.full((h, w), 128, np.uint8)]),
           }[encoding]()
    return _image_msg(t, np.ascontiguousarray(arr), encoding, bigendian, pad, 0xEE, frame)


def depth_image(t, values, encoding="32FC1", bigendian=False, pad=0, frame="cam_optical"):
    """A depth image from an (H, W) array of metres (32FC1) or raw units (16UC1)."""
    dt = np.float32 if encoding == "32FC1" else np.uint16
    return _image_msg(t, np.asarray(values, dt), encoding, bigendian, pad, 0x7F, frame)


def _image_msg(t, arr, encoding, bigendian, pad, pad_byte, frame):
    """An Image message of ``arr``, each row followed by ``pad`` bytes of ``pad_byte``."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from pose_perception.core.image_codec import encode_image
    from pose_perception.ros.conversions import sec_to_stamp
    hh, ww, step, data = encode_image(arr, encoding, bigendian)
    if pad:
        rows = np.frombuffer(data, np.uint8).reshape(hh, step)
        data = np.hstack([rows, np.full((hh, pad), pad_byte, np.uint8)]).tobytes()
        step += pad
    msg = Image(height=hh, width=ww, encoding=encoding, is_bigendian=int(bigendian), step=step)
    msg.data = data
    msg.header = Header(stamp=sec_to_stamp(t), frame_id=frame)
    return msg


def ensure_info(h, info=None, depth_info=None):
    """Publish CameraInfo(s) and wait until the node holds them (before images are sent)."""
    info = info if info is not None else info_msg()

    def same(a, b):
        return a is not None and (a.width, a.height) == (b.width, b.height) and \
            np.array_equal(a.k, b.k, equal_nan=True)
    h.pub["info"].publish(info)
    if depth_info is not None:
        h.pub["dinfo"].publish(depth_info)
    h.spin_until(lambda: same(h.node._color_info, info) and (
        depth_info is None or same(h.node._depth_info, depth_info)), "CameraInfo received")


def send_pair(h, colour, depth=None, info=True):
    if info:
        ensure_info(h)
    if depth is not None:
        h.pub["depth"].publish(depth)
    h.pub["color"].publish(colour)


def expect_logged(h, logs, pattern, what, timeout=5.0):
    rx = re.compile(pattern)
    h.spin_until(lambda: any(rx.search(t) for _, t in logs), f"log line /{pattern}/ ({what})",
                 timeout)
    return [t for _, t in logs if rx.search(t)]


def expect_diag(h, pattern, what, since=0, timeout=5.0):
    rx = re.compile(pattern)
    h.spin_until(lambda: rx.search(diag_text(h, since)), f"diagnostics /{pattern}/ ({what})",
                 timeout)


def expect_good_frame_next(h, t):
    """The node is alive: a good frame after the bad ones is processed and published."""
    n = len(h.skeletons)
    ensure_info(h)
    h.send(t, info=False)
    h.spin_until(lambda: len(h.skeletons) > n and abs(stamp_of(h.skeletons[-1]) - t) < 1e-6,
                 f"a good frame at {t} after the bad ones")
    assert h.node._worker.is_alive()
    return h.skeletons[-1]


def has_3d(sk):
    return any(k.position_valid for s in sk.skeletons for k in s.keypoints)


def level(h):
    from pose_perception.ros.diagnostics import level_of
    return level_of(h.diag[-1])


class ScriptedKeypoints:
    """Stands in for KeypointPipeline inside the *real* Perception (lifting, tracking,
    smoothing and time handling real): one person standing still."""

    provider = "CPUExecutionProvider"

    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def process(self, rgb, stamp_s=None):
        from pose_perception.core.types import FrameResult, Keypoints, Person
        xy = np.stack([np.linspace(40, 120, 33), np.linspace(30, 90, 33)], 1)
        p = Person(Keypoints("blazepose33", xy, np.full(33, 0.9)),
                   np.array([40, 30, 120, 90.0]), 0.9)
        return FrameResult(persons=[p], detector_ran=True)


@pytest.fixture
def real_perception_harness(ros, monkeypatch):
    """Harness whose node runs the real core Perception around ScriptedKeypoints."""
    import test_ros_pose_node as base

    from pose_perception.core.perception import Perception, PerceptionConfig
    made = []

    def perception(cfg, **_):
        cfg = {k: v for k, v in cfg.items() if k != "keypoints"}
        return Perception(PerceptionConfig.from_dict(cfg), keypoints=ScriptedKeypoints())

    def make(params=None):
        with monkeypatch.context() as m:
            m.setattr(base, "FakePerception", perception)
            h = base.Harness(ros, params)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


# ------------------------------------------------------------------------------ encodings
@pytest.mark.parametrize("encoding,expected,tol", [
    ("rgb8", (200, 100, 50), 0), ("bgr8", (200, 100, 50), 0), ("rgba8", (200, 100, 50), 0),
    ("bgra8", (200, 100, 50), 0), ("mono8", (200, 200, 200), 0),
    ("mono16", (200, 200, 200), 0), ("yuv422", None, 0), ("yuyv", None, 0)])
def test_supported_colour_encodings_reach_the_pipeline_as_rgb(harness, encoding, expected, tol):
    h = harness()
    t = 100.0
    for big in ((False, True) if encoding == "mono16" else (False,)):
        t += 0.1
        send_pair(h, colour_image(t, encoding=encoding, bigendian=big), depth_msg(t))
        h.spin_until(lambda: h.skeletons and abs(stamp_of(h.skeletons[-1]) - t) < 1e-6,
                     f"{encoding} frame (big-endian {big})")
        call = h.fake.calls[-1]
        assert call["shape"] == (H, W, 3)
        px = call["rgb00"].astype(int)
        if expected is None:          # 4:2:2 grey: Y = 200 (BT.601 studio swing -> ~215)
            assert px[0] == px[1] == px[2] and 190 <= px[0] <= 235, px
        else:
            np.testing.assert_allclose(px, expected, atol=tol)
        assert h.skeletons[-1].depth_used and has_3d(h.skeletons[-1])
    assert counter(h, "decode errors") == 0


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "64FC1", "", "16UC1", "32FC1",
                                      "8UC2"])
def test_unsupported_colour_encoding_is_skipped_with_log_and_diagnostics(harness, encoding):
    h = harness()
    logs = record_logs(h)
    ensure_info(h)
    for i in range(3):                         # three bad frames: one log line (rate limit)
        t = 10.0 + i * 0.1
        if encoding in ("16UC1", "32FC1"):     # a depth topic given as the colour topic
            bad = depth_msg(t, encoding=encoding)
        else:
            bad = colour_msg(t)
            bad.encoding = encoding
        send_pair(h, bad, depth_msg(t), info=False)
        h.spin_for(0.15)
    lines = expect_logged(h, logs, "colour image on .* skipped", "bad encoding")
    assert len(lines) == 1, lines
    want = ("is a depth encoding" if encoding in ("16UC1", "32FC1")
            else f"unsupported image encoding '{encoding}'")
    assert want in lines[0]
    expect_diag(h, re.escape(want), "reason in /diagnostics")
    h.spin_until(lambda: counter(h, "decode errors") == 3, "decode errors counter = 3")
    assert h.skeletons == [] and h.fake.calls == []          # skipped, not half-processed
    expect_good_frame_next(h, 11.0)


def test_unsupported_depth_encoding_gives_2d_with_reason(harness):
    h = harness()
    logs = record_logs(h)
    bad = depth_msg(20.0)
    bad.encoding = "mono8"
    send_pair(h, colour_msg(20.0), bad)
    h.spin_until(lambda: h.skeletons, "2D skeletons")
    assert not h.skeletons[-1].depth_used and not has_3d(h.skeletons[-1])
    expect_logged(h, logs, r"depth image encoding 'mono8' .* is not a depth encoding",
                  "depth encoding")
    expect_diag(h, "not a depth encoding", "diag")
    assert counter(h, "decode errors") >= 1
    assert expect_good_frame_next(h, 21.0).depth_used


# --------------------------------------------------------------------- layout of the buffer
def test_row_padding_and_big_endian_data_are_decoded(harness):
    h = harness()
    depth = np.full((H, W), 2.5, np.float32)
    cases = [  # (colour kwargs, depth message builder)
        (dict(pad=13), lambda t: depth_image(t, depth, pad=7)),
        (dict(encoding="bgra8", pad=64), lambda t: depth_image(t, depth * 1000, "16UC1",
                                                               pad=32)),
        (dict(encoding="mono16", bigendian=True, pad=6),
         lambda t: depth_image(t, depth * 1000, "16UC1", bigendian=True, pad=2)),
        (dict(), lambda t: depth_image(t, depth, "32FC1", bigendian=True)),
    ]
    for i, (ckw, dmsg) in enumerate(cases):
        t = 30.0 + i
        colour = colour_image(t, **ckw)
        send_pair(h, colour, dmsg(t))
        h.spin_until(lambda: len(h.skeletons) > i, f"case {i}")
        call = h.fake.calls[-1]
        grey = ckw.get("encoding") == "mono16"
        np.testing.assert_array_equal(call["rgb00"], (200, 200, 200) if grey else (200, 100, 50))
        np.testing.assert_allclose(call["depth"], 2.5, rtol=1e-6)   # every pixel, no padding
        k = h.skeletons[-1].skeletons[0].keypoints[7]
        assert k.position_valid and k.position.z == pytest.approx(2.5, rel=1e-5)
    assert counter(h, "decode errors") == 0


def test_empty_and_truncated_images(harness):
    from sensor_msgs.msg import Image
    h = harness()
    logs = record_logs(h)
    empty = Image(height=0, width=0, encoding="rgb8", step=0)
    empty.header = colour_msg(40.0).header
    send_pair(h, empty, depth_msg(40.0))
    expect_logged(h, logs, r"zero size \(0x0\)", "empty colour image")
    no_data = colour_msg(40.1)
    no_data.data = b""
    send_pair(h, no_data, depth_msg(40.1))
    expect_logged(h, logs, r"data too short: 0 bytes", "colour image without data")
    h.spin_until(lambda: counter(h, "decode errors") == 2, "2 decode errors")
    assert h.skeletons == []
    # an empty depth image: the colour frame is processed in 2D
    empty_depth = Image(height=0, width=0, encoding="16UC1", step=0)
    empty_depth.header = depth_msg(40.2).header
    send_pair(h, colour_msg(40.2), empty_depth)
    h.spin_until(lambda: h.skeletons, "2D frame")
    assert not h.skeletons[-1].depth_used
    expect_logged(h, logs, r"depth image skipped: .*zero size", "empty depth")
    expect_diag(h, "zero size", "diag")
    assert expect_good_frame_next(h, 41.0).depth_used


# ------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("fault,log,diag", [
    ("zero_k", r"K is all zero: the camera is not calibrated", "not calibrated"),
    ("nan_k", r"K contains NaN", "NaN"),
    ("other_aspect", r"does not match its CameraInfo 160x160 \(other aspect ratio\)",
     "other aspect ratio"),
])
def test_unusable_camera_info_gives_2d_with_reason(harness, fault, log, diag):
    h = harness()
    logs = record_logs(h)
    info = info_msg()
    if fault == "zero_k":
        info.k = [0.0] * 9
        info.p = [0.0] * 12
    elif fault == "nan_k":
        k = list(info.k)
        k[0] = float("nan")
        info.k = k
    else:
        info = info_msg(size=(160, 160))
    ensure_info(h, info)
    for i in range(3):
        h.pub["info"].publish(info)
        h.pub["depth"].publish(depth_msg(50.0 + i * 0.1))
        h.pub["color"].publish(colour_msg(50.0 + i * 0.1))
        h.spin_until(lambda: len(h.skeletons) > i, f"2D frame {i}")
        sk = h.skeletons[-1]
        assert not sk.depth_used and not has_3d(sk)
        assert sk.skeletons[0].keypoints[0].x == pytest.approx(40.0)   # 2D still there
    lines = expect_logged(h, logs, log, fault)
    assert len(lines) == 1, lines                    # rate-limited
    expect_diag(h, diag, "reason in diagnostics")
    assert level(h) == 1                             # WARN
    assert h.fake.calls[-1]["camera"] is None
    # a good CameraInfo: 3D again
    sk = expect_good_frame_next(h, 52.0)
    assert sk.depth_used and has_3d(sk)


def test_camera_info_of_another_resolution_same_aspect_is_scaled(harness):
    h = harness()
    logs = record_logs(h)
    ensure_info(h, info_msg(size=(2 * W, 2 * H), f=2 * FX))
    h.pub["depth"].publish(depth_msg(60.0))
    h.pub["color"].publish(colour_msg(60.0))
    h.spin_until(lambda: h.skeletons, "skeletons")
    cam = h.fake.calls[-1]["camera"]
    assert (cam.width, cam.height) == (W, H) and cam.fx == pytest.approx(FX)
    assert has_3d(h.skeletons[-1])
    expect_logged(h, logs, rf"colour image {W}x{H} but CameraInfo {2 * W}x{2 * H}: intrinsics "
                  "scaled", "scaled")
    expect_diag(h, "intrinsics scaled", "diag")


def test_camera_info_never_received_is_logged(harness):
    h = harness()
    logs = record_logs(h)
    for i in range(3):
        h.send(70.0 + i * 0.1, info=False)
        h.spin_until(lambda: len(h.skeletons) > i, "2D frames")
    assert not any(has_3d(s) for s in h.skeletons)
    lines = expect_logged(h, logs, "no CameraInfo received on", "no CameraInfo")
    assert len(lines) == 1
    expect_diag(h, "no CameraInfo received on", "diag")


# ------------------------------------------------------------------------------- depth
def test_colour_and_depth_of_different_sizes(real_perception_harness):
    h = real_perception_harness()
    logs = record_logs(h)

    def frame(t, size, depth_info=None):
        n = len(h.skeletons)
        ensure_info(h, depth_info=depth_info)
        h.pub["depth"].publish(depth_msg(t, metres=2.0, size=size))
        h.pub["color"].publish(colour_msg(t))
        h.spin_until(lambda: len(h.skeletons) > n, f"frame with {size} depth")
        return h.skeletons[-1]

    # registered depth at half resolution, no depth CameraInfo: scaled (same field of view)
    sk = frame(80.0, (W // 2, H // 2))
    z = [k.position.z for k in sk.skeletons[0].keypoints if k.position_valid]
    assert sk.depth_used and len(z) > 20 and 2.0 <= min(z) and max(z) < 2.3
    # another aspect ratio without a matching depth CameraInfo cannot be mapped: 2D + reason
    sk = frame(81.0, (W // 2, W // 2))
    assert not sk.depth_used and not has_3d(sk)
    expect_logged(h, logs, rf"registered depth image {W // 2}x{W // 2} has another aspect ratio",
                  "aspect")
    expect_diag(h, "another aspect ratio", "diag")
    # ... with its own CameraInfo it can (a wider depth camera, centred)
    sk = frame(82.0, (W // 2, W // 2), info_msg(size=(W // 2, W // 2), f=FX / 2))
    assert sk.depth_used and has_3d(sk)


@pytest.mark.parametrize("kind", ["16UC1 zeros", "32FC1 NaN", "32FC1 negative", "32FC1 inf",
                                  "out of range"])
def test_depth_without_any_valid_reading_gives_2d_with_reason(harness, kind):
    h = harness()
    logs = record_logs(h)
    if kind == "16UC1 zeros":
        d = depth_image(90.0, np.zeros((H, W)), "16UC1")
    elif kind == "out of range":                       # 20 m > depth_max_m = 10 m
        d = depth_image(90.0, np.full((H, W), 20.0))
    else:
        v = {"32FC1 NaN": np.nan, "32FC1 negative": -1.5, "32FC1 inf": np.inf}[kind]
        d = depth_image(90.0, np.full((H, W), v))
    send_pair(h, colour_msg(90.0), d)
    h.spin_until(lambda: h.skeletons, "2D frame")
    sk = h.skeletons[-1]
    assert not sk.depth_used and not has_3d(sk) and sk.skeletons
    expect_logged(h, logs, r"has no valid reading \(every pixel 0, NaN, inf, negative",
                  "invalid depth")
    expect_diag(h, "has no valid reading", "diag")
    assert h.fake.calls[-1]["depth"] is None
    assert expect_good_frame_next(h, 91.0).depth_used


def test_negative_inf_and_nan_depth_pixels_are_invalid_not_wrong(harness):
    h = harness()
    d = np.full((H, W), 2.0, np.float32)
    d[:, :60] = -2.0            # keypoints x = 40 .. 120 over columns 40 .. 120
    d[:, 60:80] = np.inf
    d[:, 80:100] = np.nan
    send_pair(h, colour_msg(95.0), depth_image(95.0, d))
    h.spin_until(lambda: h.skeletons, "frame")
    sk = h.skeletons[-1]
    assert sk.depth_used
    for k in sk.skeletons[0].keypoints:
        col = int(round(k.x))
        if col < 100:
            assert not k.position_valid and np.isnan(k.position.z), col
        else:
            assert k.position_valid and k.position.z == pytest.approx(2.0), col


# ------------------------------------------------------------------------------- time
def test_stamps_backwards_duplicated_and_jumping(real_perception_harness):
    h = real_perception_harness({"use_depth": False})
    logs = record_logs(h)
    perception = h.node.perception
    h.pub["info"].publish(info_msg())
    h.spin_for(0.1)

    def frame(t):
        n = len(h.skeletons)
        h.pub["color"].publish(colour_msg(t))
        h.spin_until(lambda: len(h.skeletons) > n, f"frame {t}")
        return h.skeletons[-1].skeletons[0].track_id

    assert frame(100.0) == frame(100.033) == 1
    # the camera sends a duplicated stamp and a slightly older one (out of order): skipped,
    # logged (once: rate-limited), counted
    stale0 = counter(h, "stale pairs")
    for t in (100.033, 100.0):
        h.pub["color"].publish(colour_msg(t))
        h.spin_for(0.2)
    assert len(h.skeletons) == 2
    lines = expect_logged(h, logs, "image stamps went backwards: colour", "duplicates")
    assert lines == ["the camera's image stamps went backwards: colour image stamped 100.033000 "
                     "arrived after one stamped 100.033000 (duplicated or out of order); it is "
                     "not processed"]
    expect_diag(h, "duplicated or out of order", "diag")
    h.spin_until(lambda: counter(h, "stale pairs") >= stale0 + 2, "stale pairs counter")
    # bag loop: 60 s back -> processed, tracking reset (a new track id), logged
    assert frame(40.0) == 2
    assert perception.resets == 1
    expect_logged(h, logs, r"image stamps went backwards \(bag loop or restarted camera\?\) by "
                  r"60\.0 s: tracking starts over", "bag loop")
    expect_diag(h, "went backwards", "diag")
    assert frame(40.033) == 2
    # a jump forward beyond the tracker's memory: processed, noted, people's tracks restart
    assert frame(45.0) == 3
    expect_logged(h, logs, r"image stamps jumped forward .* by 5\.0 s", "forward jump")
    expect_diag(h, "jumped forward", "diag")
    h.spin_until(lambda: counter(h, "time jumps") == 2, "time jumps counter")
    assert frame(45.033) == 3 and h.node._worker.is_alive()


# ------------------------------------------------------------------- exceptions, GPU
def test_exception_in_pipeline_or_conversion_never_kills_the_node(harness):
    from pose_perception.core.types import FrameResult
    h = harness()
    logs = record_logs(h)
    real_process = h.fake.process
    faults = iter([RuntimeError("boom in the pipeline"), "bad result"])

    def process(*a, **kw):
        fault = next(faults, None)
        if isinstance(fault, Exception):
            raise fault
        if fault == "bad result":                 # a malformed result: conversion raises
            return FrameResult(persons=[object()])
        return real_process(*a, **kw)
    h.fake.process = process
    h.send(110.0)
    expect_logged(h, logs, "frame skipped after an exception: RuntimeError: boom", "exception")
    h.send(110.5)
    expect_logged(h, logs, "frame skipped after an exception: AttributeError", "conversion")
    expect_diag(h, "frame failed", "diag")
    assert level(h) == 2                                     # ERROR while it is recent
    h.spin_until(lambda: counter(h, "frame errors") == 2, "frame errors = 2")
    assert h.skeletons == []
    expect_good_frame_next(h, 111.0)


def test_gpu_requested_but_missing_warns_only_when_a_gpu_build_fails(ros, capfd, monkeypatch):
    """issue 17, defect 7: a CPU-only onnxruntime gets one info line; a GPU build whose provider
    did not start gets one warning."""
    require_ros()
    import onnxruntime
    from rclpy.parameter import Parameter

    from pose_perception.ros.pose_node import PoseNode

    class CpuPerception(FakePerception):
        provider = "CPUExecutionProvider"

    def start(name, **params):
        node = PoseNode(lambda cfg: CpuPerception(cfg), namespace=name, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        assert node.diag.facts["execution provider"] == "CPUExecutionProvider"
        node.destroy_node()
        return capfd.readouterr().err

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    err = start("/gpu_failed", providers=["cuda", "cpu"])
    assert err.count("no GPU execution provider works here") == 1, err
    assert "[WARN]" in err and "CUDAExecutionProvider" in err and "use_gpu:=false" in err
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    err = start("/cpu_build", providers=["tensorrt", "cuda", "cpu"])
    assert "WARN" not in err and err.count("this onnxruntime build has no GPU support") == 1, err
    assert "no GPU" not in start("/gpu_off", use_gpu=False)
