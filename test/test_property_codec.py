"""Property-based tests (hypothesis) of the decoding the node does on every message: random but
well-typed sensor_msgs/Image fields (any encoding name, sizes including 0, any step, either byte
order, data too short / too long, random bytes: NaN and inf in float depth) go through
``image_msg_to_array`` -> ``to_rgb`` (colour) or ``depth_to_metres`` (depth) exactly as pose_node
calls them; random CameraInfo goes through ``camera_info_to_model``. Only ``ImageDecodeError``
(images) or ``ValueError`` (calibration) may escape, and what comes out keeps its contract."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pose_perception.core.depth import depth_to_metres
from pose_perception.core.image_codec import (DEPTH_ENCODINGS, SUPPORTED_ENCODINGS,
                                              ImageDecodeError, bytes_per_pixel, decode_image,
                                              to_rgb)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENCODINGS = list(SUPPORTED_ENCODINGS) + ["bayer_rggb8", "64FC1", "", "8UC2", "RGB8", "16SC1",
                                         "rgb16", "nv21", "jpeg"]


@st.composite
def image_fields(draw, encodings=ENCODINGS, sane=st.just(False)):
    """(encoding, height, width, step, is_bigendian, data) as a message may carry them; when
    ``sane`` draws True: a well-formed message (size, step and data length consistent; depth
    with plausible values)."""
    enc = draw(st.sampled_from(encodings))
    ok = draw(sane)
    big = draw(st.sampled_from([0, 1]))
    h, w = draw(st.integers(1 if ok else 0, 12)), draw(st.integers(1 if ok else 0, 12))
    bpp = bytes_per_pixel(enc) if enc in SUPPORTED_ENCODINGS else draw(st.integers(1, 4))
    if ok and enc in ("yuv422", "uyvy", "yuyv", "yuv422_yuy2"):
        w += w % 2
    pads = [0, 0, 3, 64] if ok else [0, 0, 0, 1, 3, 64, -1, -bpp]
    step = max(0, w * bpp + draw(st.sampled_from(pads)))
    deltas = [0, 0, 5] if ok else [0, 0, 0, 5, -1, -step, -step * h]
    n = max(0, step * h + draw(st.sampled_from(deltas)))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if ok and enc in DEPTH_ENCODINGS and draw(st.booleans()):    # plausible depth
        z = rng.uniform(0.3, 6.0) + rng.normal(0, 0.01, (h, w))      # a surface with holes
        z[rng.random((h, w)) < 0.2] = 0.0
        raw = (z * 1000).astype(">u2" if big else "<u2") if enc == "16UC1" else \
            z.astype(">f4" if big else "<f4")
        rows = raw.view(np.uint8).reshape(h, -1)
        rows = np.hstack([rows, np.zeros((h, step - rows.shape[1]), np.uint8)])
        data = rows.tobytes() + bytes(max(0, n - step * h))
    elif draw(st.booleans()) and n:                 # float depth full of special values
        specials = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, 2.5], np.float32)
        data = np.resize(specials, n // 4 + 1).tobytes()[:n]
    return enc, h, w, step, big, data


@settings(max_examples=300, **SETTINGS)
@given(fields=image_fields())
def test_decode_and_colour_conversion_raise_only_image_decode_error(fields):
    enc, h, w, step, big, data = fields
    try:
        arr = decode_image(enc, h, w, step, big, data)
    except ImageDecodeError as exc:
        assert str(exc)                                 # a reason, never an empty message
        return
    assert enc in SUPPORTED_ENCODINGS and h > 0 and w > 0
    assert arr.shape[:2] == (h, w)
    row = w * bytes_per_pixel(enc)
    assert step >= row and len(data) >= step * (h - 1) + row
    # the first row is exactly the first bytes (no padding read, right byte order)
    first = np.frombuffer(data[:row], arr.dtype.newbyteorder(">" if big else "<"))
    np.testing.assert_array_equal(arr[0].reshape(-1), first)
    try:
        rgb = to_rgb(arr, enc)
    except ImageDecodeError as exc:
        assert enc in DEPTH_ENCODINGS and "depth encoding" in str(exc)
        return
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous


@settings(max_examples=200, **SETTINGS)
@given(fields=image_fields(list(DEPTH_ENCODINGS) + ["mono8", "64FC1"]),
       scale=st.sampled_from([None, 0.001, 1e-4, 1.0]),
       limits=st.sampled_from([(0.1, 10.0), (0.0, math.inf), (2.0, 3.0)]))
def test_depth_decoding_gives_metres_or_nan(fields, scale, limits):
    enc, h, w, step, big, data = fields
    try:
        raw = decode_image(enc, h, w, step, big, data)
    except ImageDecodeError:
        return
    if enc not in DEPTH_ENCODINGS:
        with pytest.raises(ValueError, match="unsupported depth encoding"):
            depth_to_metres(raw, enc, scale, *limits)
        return
    m = depth_to_metres(raw, enc, scale, *limits, out=np.empty(raw.shape, np.float32))
    assert m.shape == (h, w) and m.dtype == np.float32
    ok = np.isfinite(m)
    assert (m[ok] > max(limits[0], 0.0)).all() and (m[ok] <= limits[1]).all()
    assert np.isnan(m[~ok]).all()
    with np.errstate(invalid="ignore", over="ignore"):
        expected = raw.astype(np.float64) * (scale or (0.001 if enc == "16UC1" else 1.0))
    np.testing.assert_allclose(m[ok], expected[ok], rtol=1e-6, atol=1e-37)   # denormals


@st.composite
def camera_infos(draw):
    from pose_perception.ros.conversions import CameraInfo
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    w, h = draw(st.sampled_from([0, 1, 16, 640])), draw(st.sampled_from([0, 1, 12, 480]))
    f = draw(st.sampled_from([0.0, -100.0, math.nan, math.inf, 1e-9, 500.0, 500.0]))
    K = [f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0]
    if draw(st.booleans()):
        K = list(rng.choice([0.0, 1.0, math.nan, 300.0, -1.0], 9))
    model = draw(st.sampled_from(["plumb_bob", "rational_polynomial", "equidistant", "",
                                  "fisheye", "kannala_brandt"]))
    d = list(rng.normal(0, 0.1, draw(st.sampled_from([0, 4, 5, 8, 14]))))
    if d and draw(st.booleans()):
        d[0] = draw(st.sampled_from([math.nan, math.inf]))
    msg = CameraInfo(width=w, height=h, distortion_model=model, d=d, k=K)
    msg.p = list(rng.choice([0.0, 1.0, 500.0, math.nan], 12))
    msg.r = list(np.eye(3).ravel()) if draw(st.booleans()) else list(rng.normal(size=9))
    return msg


@settings(max_examples=200, **SETTINGS)
@given(info=camera_infos())
def test_any_camera_info_gives_a_usable_model_or_a_clear_value_error(info):
    pytest.importorskip("rclpy")
    from pose_perception.ros.conversions import camera_info_to_model
    try:
        model = camera_info_to_model(info)
    except ValueError as exc:
        assert "unusable CameraInfo" in str(exc)
        return
    assert model.width > 0 and model.height > 0
    assert np.isfinite(model.K).all() and model.fx > 0 and model.fy > 0
    xy = np.array([[0.0, 0.0], [model.width / 2, model.height / 2], [np.nan, 1.0]])
    rays = np.asarray(model.undistort_points(xy))      # never raises on data
    assert len(rays) == 3 and np.isnan(rays[2]).all()
