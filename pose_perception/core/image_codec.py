"""Raw image buffers (``sensor_msgs/Image`` fields) <-> numpy arrays, without ROS or cv_bridge.

:func:`decode_image` turns the fields of an Image message (encoding, height, width, step,
is_bigendian, data) into an array that views the buffer where it can: row padding (``step``
larger than ``width * bytes per pixel``) is skipped by strides, big-endian data is byte-swapped
to the machine's order. :func:`to_rgb` makes an HxWx3 uint8 RGB image of any colour encoding,
:func:`encode_image` is the inverse of :func:`decode_image` (for publishers).

Supported encodings (names as in ROS ``sensor_msgs/image_encodings``):

=========================  ================  =====================================================
encoding                   decoded array     notes
=========================  ================  =====================================================
rgb8, bgr8, 8UC3           (H, W, 3) uint8
rgba8, bgra8, 8UC4         (H, W, 4) uint8
mono8, 8UC1                (H, W) uint8
mono16, 16UC1              (H, W) uint16     16UC1 is the usual depth encoding (millimetres)
32FC1                      (H, W) float32    depth in metres
yuv422 (= uyvy), uyvy      (H, W, 2) uint8   U Y0 V Y1 byte order; width must be even
yuv422_yuy2, yuyv          (H, W, 2) uint8   Y0 U Y1 V byte order; width must be even
=========================  ================  =====================================================

Every malformed input raises :class:`ImageDecodeError` with a message naming the problem
(unsupported encoding, zero size, ``step`` too small, data too short).
"""
from __future__ import annotations

from typing import Dict, Tuple

import cv2
import numpy as np

# encoding -> (numpy base dtype, channels)
_FORMATS: Dict[str, Tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "8UC3": ("u1", 3),
    "rgba8": ("u1", 4), "bgra8": ("u1", 4), "8UC4": ("u1", 4),
    "mono8": ("u1", 1), "8UC1": ("u1", 1),
    "mono16": ("u2", 1), "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
    "yuv422": ("u1", 2), "uyvy": ("u1", 2),
    "yuv422_yuy2": ("u1", 2), "yuyv": ("u1", 2),
}
SUPPORTED_ENCODINGS = tuple(_FORMATS)
DEPTH_ENCODINGS = ("16UC1", "32FC1")
_UYVY = ("yuv422", "uyvy")
_YUYV = ("yuv422_yuy2", "yuyv")
_NATIVE_BIG = not np.little_endian


class ImageDecodeError(ValueError):
    """An image buffer that cannot be decoded (the message says why)."""


def _format(encoding: str) -> Tuple[np.dtype, int]:
    try:
        base, channels = _FORMATS[encoding]
    except (KeyError, TypeError):
        raise ImageDecodeError(
            f"unsupported image encoding '{encoding}'; supported: "
            f"{', '.join(SUPPORTED_ENCODINGS)}") from None
    return np.dtype(base), channels


def bytes_per_pixel(encoding: str) -> int:
    """Bytes one pixel takes in ``encoding`` (raises :class:`ImageDecodeError` if unknown)."""
    dt, ch = _format(encoding)
    return dt.itemsize * ch


def decode_image(encoding: str, height: int, width: int, step: int, is_bigendian,
                 data) -> np.ndarray:
    """The pixels of an Image message as an array (a read-only view of ``data`` when no byte swap
    is needed). Shapes and dtypes per encoding are in the module docstring; single-channel
    encodings give (H, W). ``data`` is anything with the buffer protocol (bytes, bytearray,
    memoryview, ``array.array``, numpy array) or a sequence of ints."""
    dt, ch = _format(encoding)
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{encoding} image has zero size ({width}x{height})")
    bpp = dt.itemsize * ch
    row = width * bpp
    if step < row:
        raise ImageDecodeError(f"{encoding} image step {step} is smaller than width x bytes per "
                               f"pixel = {width} x {bpp} = {row}")
    if ch == 2 and width % 2:
        raise ImageDecodeError(f"{encoding} (4:2:2) image needs an even width, got {width}")
    try:
        buf = memoryview(data).cast("B")
    except TypeError:
        try:
            buf = memoryview(np.asarray(data, dtype=np.uint8).tobytes())
        except (TypeError, ValueError, OverflowError) as exc:
            raise ImageDecodeError(f"{encoding} image data is not a byte buffer or a sequence "
                                   f"of 0..255 values ({type(exc).__name__}: {exc})") from None
    need = step * (height - 1) + row
    if buf.nbytes < need:
        raise ImageDecodeError(f"{encoding} image data too short: {buf.nbytes} bytes for "
                               f"{width}x{height} with step {step} (need {step * height})")
    order = ">" if bool(is_bigendian) else "<"
    dtype = dt.newbyteorder(order) if dt.itemsize > 1 else dt
    shape = (height, width, ch) if ch > 1 else (height, width)
    strides = (step, bpp, dt.itemsize) if ch > 1 else (step, bpp)
    arr = np.ndarray(shape, dtype=dtype, buffer=buf, offset=0, strides=strides)
    if dt.itemsize > 1 and bool(is_bigendian) != _NATIVE_BIG:
        arr = arr.astype(dt.newbyteorder("="))   # byte swap (copy) to the machine's order
    return arr


def to_rgb(array: np.ndarray, encoding: str) -> np.ndarray:
    """An HxWx3 uint8 RGB image from a decoded colour/mono image of ``encoding`` (a new array,
    except for rgb8 input that is already contiguous). Depth encodings (16UC1, 32FC1) are not
    colour images and raise :class:`ImageDecodeError`."""
    _format(encoding)
    a = np.asarray(array)
    if encoding in DEPTH_ENCODINGS:
        raise ImageDecodeError(f"'{encoding}' is a depth encoding, not a colour image "
                               "(check the colour image topic)")
    if encoding in ("rgb8", "bgr8", "8UC3"):
        if encoding == "rgb8":
            return np.ascontiguousarray(a)
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGR2RGB)
    if encoding in ("rgba8",):
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGBA2RGB)
    if encoding in ("bgra8", "8UC4"):
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGRA2RGB)
    if encoding in ("mono8", "8UC1"):
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_GRAY2RGB)
    if encoding == "mono16":
        return cv2.cvtColor((a >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    if encoding in _UYVY:
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_YUV2RGB_UYVY)
    if encoding in _YUYV:
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_YUV2RGB_YUYV)
    raise ImageDecodeError(f"no RGB conversion for encoding '{encoding}'")  # pragma: no cover


def encode_image(array: np.ndarray, encoding: str, bigendian: bool = False
                 ) -> Tuple[int, int, int, bytes]:
    """Inverse of :func:`decode_image`: ``(height, width, step, data)`` of ``array`` in
    ``encoding`` (rows unpadded, little-endian unless ``bigendian``). The array's shape and
    dtype must match the encoding (e.g. uint16 (H, W) for 16UC1)."""
    dt, ch = _format(encoding)
    a = np.asarray(array)
    want = (2,) if ch == 1 else (3,)
    if a.ndim == 3 and ch == 1 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in want or (ch > 1 and a.shape[2] != ch) or a.dtype.kind != dt.kind or \
            a.dtype.itemsize != dt.itemsize:
        exp = f"(H, W{', %d' % ch if ch > 1 else ''}) {dt.name}"
        raise ImageDecodeError(f"cannot encode array of shape {a.shape} and dtype {a.dtype} "
                               f"as {encoding}: expected {exp}")
    if a.shape[0] <= 0 or a.shape[1] <= 0:
        raise ImageDecodeError(f"cannot encode an empty image of shape {a.shape}")
    out_dt = dt.newbyteorder(">" if bigendian else "<") if dt.itemsize > 1 else dt
    a = np.ascontiguousarray(a, dtype=out_dt)
    h, w = a.shape[:2]
    return h, w, w * dt.itemsize * ch, a.tobytes()
