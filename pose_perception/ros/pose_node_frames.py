"""pose_node's frames at each image stamp, from TF (or the ``static_transforms`` stand-in): the
output transform (``target_frame``), the robot's point for attention and STOP signs
(``attention_frame``) and which way is up for posture and gestures (``up_frame``). Each lookup
that fails is reported (log + diagnostics under its parameter's name) with what is done
instead, and the frame goes on.

A mixin of :class:`pose_perception.ros.pose_node.PoseNode`: it uses the node's parameters
(``self.p``), TF buffer and diagnostics set up in ``PoseNode.__init__``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..core.body_language import LEVEL_CAMERA_UP
from . import compat
from .diagnostics import WARN


class FrameLookups:
    """TF lookups of the pose node (see the module docstring)."""

    def _lookup(self, key: str, target: str, source: str, stamp, fallback: str
                ) -> Optional[np.ndarray]:
        """``T_target_source`` at the image stamp, or None (reported under ``key``, saying what
        happens instead: ``fallback``) when TF does not have it."""
        try:
            T = compat.lookup_matrix(self.tf_buffer, target, source, stamp,
                                     self.p["tf_timeout_s"])
            with self._diag_lock:
                self.diag.clear(key)
            return T
        except compat.TF_EXCEPTIONS as exc:
            to = f"{key} '{target}'" if key == "target_frame" else f"'{target}'"
            self._issue(key, WARN, f"no transform '{source}' -> {to} at the image stamp "
                                   f"({exc}): {fallback}")
            return None

    def _attention_target(self, cam_frame: str, stamp) -> Tuple[float, float, float]:
        """The robot's point for attention and engagement in the camera's frame: the origin of
        ``attention_frame`` (empty: the camera itself)."""
        frame = self.p["attention_frame"]
        T = self._lookup("attention_frame", cam_frame, frame, stamp,
                         "attention measured towards the camera") if frame else None
        return (0.0, 0.0, 0.0) if T is None else tuple(float(v) for v in T[:3, 3])

    def _up_vector(self, cam_frame: str, stamp) -> Tuple[float, float, float]:
        """Up (against gravity) in the camera's frame: the +z axis of ``up_frame`` (empty: of
        ``target_frame``; neither: the camera is taken as level, up = -y of its optical
        frame)."""
        frame = self.p["up_frame"] or self.p["target_frame"]
        T = self._lookup("up_frame", cam_frame, frame, stamp,
                         "posture and gestures assume a level camera") if frame else None
        return LEVEL_CAMERA_UP if T is None else tuple(float(v) for v in T[:3, 2])

    def _output_transform(self, cam_frame: str, stamp) -> Tuple[str, Optional[np.ndarray]]:
        """(frame of the published 3D, ``T_output_camera`` or None for the camera's own)."""
        target = self.p["target_frame"]
        if not target or target == cam_frame:
            return cam_frame, None
        T = self._lookup("target_frame", target, cam_frame, stamp,
                         f"publishing in '{cam_frame}'")
        return (cam_frame, None) if T is None else (target, T)
