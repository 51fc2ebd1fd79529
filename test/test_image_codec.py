"""core.image_codec: sensor_msgs/Image buffers <-> numpy without ROS (every encoding, row
padding, big-endian data, and the error cases)."""
import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pose_perception.core.image_codec import (SUPPORTED_ENCODINGS, ImageDecodeError,
                                              bytes_per_pixel, decode_image, encode_image,
                                              to_rgb)

RNG = np.random.default_rng(0)


def _padded(arr: np.ndarray, pad: int, bigendian: bool = False):
    """Bytes of ``arr`` with ``pad`` extra bytes per row, as a driver with row alignment sends."""
    a = arr.astype(arr.dtype.newbyteorder(">" if bigendian else "<"))
    rows = a.reshape(a.shape[0], -1).view(np.uint8).reshape(a.shape[0], -1)
    padded = np.concatenate([rows, np.full((a.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return padded.tobytes(), rows.shape[1] + pad


@pytest.mark.parametrize("encoding,dtype,ch", [
    ("rgb8", np.uint8, 3), ("bgr8", np.uint8, 3), ("rgba8", np.uint8, 4), ("bgra8", np.uint8, 4),
    ("mono8", np.uint8, 1), ("mono16", np.uint16, 1), ("16UC1", np.uint16, 1),
    ("32FC1", np.float32, 1), ("yuv422", np.uint8, 2), ("yuyv", np.uint8, 2)])
@pytest.mark.parametrize("pad", [0, 3, 64])
@pytest.mark.parametrize("bigendian", [False, True])
def test_decode_roundtrip_with_row_padding_and_endianness(encoding, dtype, ch, pad, bigendian):
    h, w = 5, 8
    shape = (h, w) if ch == 1 else (h, w, ch)
    if dtype == np.float32:
        arr = RNG.uniform(0.1, 9.0, shape).astype(dtype)
    else:
        arr = RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    data, step = _padded(arr, pad, bigendian)
    out = decode_image(encoding, h, w, step, bigendian, data)
    assert out.shape == shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_decode_views_the_buffer_without_copy_when_possible():
    arr = RNG.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    buf = bytearray(arr.tobytes())
    out = decode_image("rgb8", 4, 6, 18, False, buf)
    buf[0] = (int(buf[0]) + 1) % 256
    assert out[0, 0, 0] == buf[0]


def test_decode_accepts_array_array_and_lists():
    arr = RNG.integers(0, 255, (2, 3), dtype=np.uint8)
    a = decode_image("mono8", 2, 3, 3, 0, array.array("B", arr.tobytes()))
    b = decode_image("mono8", 2, 3, 3, 0, arr.ravel().tolist())
    np.testing.assert_array_equal(a, arr)
    np.testing.assert_array_equal(b, arr)


@pytest.mark.parametrize("kwargs,match", [
    (dict(encoding="bayer_rggb8"), "unsupported image encoding 'bayer_rggb8'"),
    (dict(encoding="", ), "unsupported image encoding ''"),
    (dict(height=0), "zero size"),
    (dict(width=0), "zero size"),
    (dict(step=10), r"step 10 is smaller than width x bytes per pixel = 4 x 3 = 12"),
    (dict(data=b"\0" * 20), "data too short: 20 bytes"),
])
def test_decode_errors_are_clear(kwargs, match):
    args = dict(encoding="rgb8", height=2, width=4, step=12, is_bigendian=False,
                data=b"\0" * 24)
    args.update(kwargs)
    with pytest.raises(ImageDecodeError, match=match):
        decode_image(**args)


def test_yuv422_needs_even_width():
    with pytest.raises(ImageDecodeError, match="even width"):
        decode_image("yuv422", 2, 3, 6, False, b"\0" * 12)


def test_to_rgb_of_colour_encodings_matches_opencv():
    rgb = RNG.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb(rgb, "rgb8"), rgb)
    np.testing.assert_array_equal(to_rgb(rgb[..., ::-1], "bgr8"), rgb)
    rgba = np.dstack([rgb, np.full((6, 8), 7, np.uint8)])
    np.testing.assert_array_equal(to_rgb(rgba, "rgba8"), rgb)
    np.testing.assert_array_equal(to_rgb(rgba[..., [2, 1, 0, 3]], "bgra8"), rgb)
    grey = rgb[..., 0]
    np.testing.assert_array_equal(to_rgb(grey, "mono8"), np.dstack([grey] * 3))
    np.testing.assert_array_equal(to_rgb(grey.astype(np.uint16) << 8, "mono16"),
                                  np.dstack([grey] * 3))


def test_to_rgb_of_uyvy_and_yuyv_recovers_a_smooth_image():
    # a smooth colour image survives 4:2:2 subsampling closely
    x = np.linspace(0, 1, 64)[None, :, None]
    rgb = np.clip(np.concatenate([x * 200 + 20, 120 + 0 * x, 220 - x * 150], 2), 0, 255)
    rgb = np.repeat(rgb, 4, axis=0).astype(np.uint8)
    r, g, b = (rgb[..., i] / 255.0 for i in range(3))      # BT.601 video range, as cameras send
    y = np.rint(16 + 65.481 * r + 128.553 * g + 24.966 * b)
    u = np.rint(128 - 37.797 * r - 74.203 * g + 112.0 * b)
    v = np.rint(128 + 112.0 * r - 93.786 * g - 18.214 * b)
    uyvy = np.empty((4, 64, 2), np.uint8)
    uyvy[:, 0::2, 0] = u[:, 0::2]
    uyvy[:, 1::2, 0] = v[:, 0::2]
    uyvy[..., 1] = y
    out = to_rgb(decode_image("uyvy", 4, 64, 128, False, uyvy.tobytes()), "uyvy")
    assert np.abs(out.astype(int) - rgb).max() <= 6
    yuyv = uyvy[..., ::-1].copy()
    out2 = to_rgb(decode_image("yuyv", 4, 64, 128, False, yuyv.tobytes()), "yuyv")
    assert np.abs(out2.astype(int) - rgb).max() <= 6


def test_to_rgb_refuses_depth():
    with pytest.raises(ImageDecodeError, match="depth encoding"):
        to_rgb(np.zeros((2, 2), np.uint16), "16UC1")


@pytest.mark.parametrize("encoding", ["rgb8", "16UC1", "32FC1"])
def test_encode_then_decode_big_endian(encoding):
    dt, ch = {"rgb8": (np.uint8, 3), "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1)}[encoding]
    arr = (RNG.random((3, 5, ch) if ch > 1 else (3, 5)) * 1000).astype(dt)
    h, w, step, data = encode_image(arr, encoding, bigendian=True)
    assert (h, w, step) == (3, 5, 5 * bytes_per_pixel(encoding))
    np.testing.assert_array_equal(decode_image(encoding, h, w, step, True, data), arr)


def test_encode_rejects_mismatched_arrays():
    with pytest.raises(ImageDecodeError, match="expected"):
        encode_image(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ImageDecodeError, match="expected"):
        encode_image(np.zeros((2, 2, 3), np.uint8), "mono8")


def test_every_supported_encoding_has_a_size():
    assert all(bytes_per_pixel(e) in (1, 2, 3, 4) for e in SUPPORTED_ENCODINGS)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), pad=st.integers(0, 9), big=st.booleans(),
       enc=st.sampled_from(["mono16", "32FC1", "bgr8", "mono8"]))
def test_decode_never_misreads_padding(h, w, pad, big, enc):
    dt, ch = {"mono16": (np.uint16, 1), "32FC1": (np.float32, 1), "bgr8": (np.uint8, 3),
              "mono8": (np.uint8, 1)}[enc]
    shape = (h, w) if ch == 1 else (h, w, ch)
    arr = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape).astype(dt)
    data, step = _padded(arr, pad, big)
    np.testing.assert_array_equal(decode_image(enc, h, w, step, big, data), arr)
