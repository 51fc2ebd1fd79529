"""A depth Image (+ its CameraInfo) -> float32 metres on a grid the core ``Lifter`` reads, plus
the depth camera model to pass with it. Shared by ``pose_node`` and ``lifting_node``.

Three paths (README "Design"): registered depth on the colour grid (used as is), registered
depth at another resolution (mapped through the depth CameraInfo, or by scaling when there is
none and the aspect ratios agree), unregistered depth (reprojected into the colour camera with
the depth->colour extrinsics looked up in TF at the image stamp). Problems are reported through
three callbacks and make :meth:`DepthInput.prepare` return ``(None, None)``: the caller then
works in 2D. Nothing here raises on bad data.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from sensor_msgs.msg import CameraInfo, Image

from ..core.camera import CameraModel
from ..core.depth import DEPTH_ENCODINGS, DepthRegistration, depth_to_metres
from ..core.image_codec import ImageDecodeError
from . import compat
from .conversions import CameraModelCache, image_msg_to_array

# registered depth without a matching depth CameraInfo is scaled to the colour image only when
# the aspect ratios agree to this relative tolerance
ASPECT_TOLERANCE = 0.01


class DepthInput:
    """Turns depth messages into lifter input; keeps its buffers and caches between frames.

    ``params``: a node's parameter values with ``depth_registered``, ``depth_unit_scale``,
    ``depth_min_m``, ``depth_max_m``, ``tf_timeout_s``. ``topics``: ``depth_image`` and
    ``depth_info`` names (for messages). Callbacks: ``bad_input(text)`` an undecodable input,
    ``issue(key, text)`` a warning of kind ``key``, ``path(text)`` the depth path in use.
    """

    def __init__(self, params, topics, tf_buffer, bad_input: Callable[[str], None],
                 issue: Callable[[str, str], None], path: Callable[[str], None]) -> None:
        self.p, self.topics, self.tf_buffer = params, topics, tf_buffer
        self._bad_input, self._issue, self._path = bad_input, issue, path
        self._buf: Optional[np.ndarray] = None
        self._models = CameraModelCache()
        self._registration: Optional[Tuple[tuple, DepthRegistration]] = None

    def camera(self, info: Optional[CameraInfo]) -> Optional[CameraModel]:
        """The depth CameraInfo's model (cached while the calibration is unchanged); None
        without one or when it is unusable (reported as issue 'depth_info')."""
        model = self._models.get(info)
        if self._models.changed and model is None:
            self._issue("depth_info", self._models.error)
        return model

    def prepare(self, msg: Image, info: Optional[CameraInfo], camera: CameraModel,
                cam_frame: str, stamp) -> Tuple[Optional[np.ndarray], Optional[CameraModel]]:
        """(depth in metres on a grid the lifter understands, its camera model or None), or
        (None, None) when this depth image cannot be used. ``info``: the latest depth
        CameraInfo; ``camera``: the colour camera model; ``cam_frame``/``stamp``: the colour
        frame and stamp (TF lookup of unregistered depth). The returned array is reused by the
        next call."""
        p = self.p
        if msg.encoding not in DEPTH_ENCODINGS:
            self._bad_input(f"depth image encoding '{msg.encoding}' on "
                            f"'{self.topics['depth_image']}' is not a depth encoding "
                            f"({'/'.join(DEPTH_ENCODINGS)}): frame processed in 2D")
            return None, None
        try:
            raw = image_msg_to_array(msg)
        except ImageDecodeError as exc:
            self._bad_input(f"depth image skipped: {exc}: frame processed in 2D")
            return None, None
        if self._buf is None or self._buf.shape != raw.shape:
            self._buf = np.empty(raw.shape, np.float32)
        depth_m = depth_to_metres(raw, msg.encoding, p["depth_unit_scale"] or None,
                                  p["depth_min_m"], p["depth_max_m"], out=self._buf)
        if not any_finite(depth_m):
            self._issue("depth_invalid",
                        f"depth image on '{self.topics['depth_image']}' has no valid reading "
                        f"(every pixel 0, NaN, inf, negative or outside depth_min_m..depth_max_m "
                        f"= {p['depth_min_m']:g}..{p['depth_max_m']:g} m): frame processed in 2D")
            return None, None
        dh, dw = depth_m.shape
        if p["depth_registered"]:
            dcam = self.camera(info)
            if (dw, dh) == (camera.width, camera.height):
                self._path("registered, same grid as colour")
                return depth_m, None
            if dcam is not None and (dcam.width, dcam.height) != (dw, dh):
                dcam = None
            if dcam is None and abs(dw / dh - camera.width / camera.height) > \
                    ASPECT_TOLERANCE * camera.width / camera.height:
                self._issue("depth_size",
                            f"registered depth image {dw}x{dh} has another aspect ratio than the "
                            f"colour image {camera.width}x{camera.height} and no matching depth "
                            f"CameraInfo on '{self.topics['depth_info']}': cannot map it; frame "
                            "processed in 2D")
                return None, None
            how = "with the depth CameraInfo" if dcam else "by scaling (no depth CameraInfo)"
            self._path(f"registered, {dw}x{dh} mapped to colour "
                       f"{camera.width}x{camera.height} {how}")
            return depth_m, dcam
        # unregistered: reproject with the extrinsics
        dcam = self.camera(info)
        if dcam is None:
            self._issue("depth_align",
                        f"depth_registered is false but no depth CameraInfo on "
                        f"'{self.topics['depth_info']}': frame processed in 2D")
            return None, None
        depth_frame = msg.header.frame_id or info.header.frame_id
        try:
            T = compat.lookup_matrix(self.tf_buffer, cam_frame, depth_frame, stamp,
                                     p["tf_timeout_s"])
        except compat.TF_EXCEPTIONS as exc:
            self._issue("depth_align",
                        f"depth not aligned and no extrinsics: no transform '{depth_frame}' -> "
                        f"'{cam_frame}' ({exc}); set depth_registered, publish TF or give "
                        "static_transforms: frame processed in 2D")
            return None, None
        if (dcam.width, dcam.height) != (dw, dh):
            self._issue("depth_size",
                        f"unregistered depth image {dw}x{dh} does not match its CameraInfo "
                        f"{dcam.width}x{dcam.height} on '{self.topics['depth_info']}': cannot "
                        "reproject it; frame processed in 2D")
            return None, None
        key = (id(dcam), id(camera), camera.width, camera.height, T.tobytes())
        try:
            if self._registration is None or self._registration[0] != key:
                self._registration = (key, DepthRegistration(dcam, camera, T[:3, :3],
                                                             T[:3, 3]))
            aligned = self._registration[1](depth_m)
        except ValueError as exc:          # e.g. a transform that is no rotation
            self._registration = None
            self._issue("depth_align", f"depth cannot be reprojected into colour ({exc}): "
                                       "frame processed in 2D")
            return None, None
        self._path(f"unregistered, reprojected into colour with TF "
                   f"'{depth_frame}' -> '{cam_frame}'")
        return aligned, None


def any_finite(a: np.ndarray) -> bool:
    """True when ``a`` has at least one finite value (a coarse subsample is tried first)."""
    return bool(np.isfinite(a[::8, ::8]).any() or np.isfinite(a).any())


def check_depth_parameters(values) -> list:
    """Errors in the depth parameters shared by pose_node and lifting_node."""
    errors = []
    if values["depth_min_m"] >= values["depth_max_m"]:
        errors.append("depth_min_m must be smaller than depth_max_m")
    try:
        for s in values["static_transforms"]:
            compat.parse_static_transform(s)
    except ValueError as exc:
        errors.append(f"parameter 'static_transforms': {exc}")
    return errors
