"""A sequence of recorded RGB-D frames (:class:`RGBDSequence`), read from a recorded folder, and
the helpers every source shares: looping it with increasing stamps, a one-line summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .rgbd_folder import RGBDFrame, load_rgbd_folder


# ---------------------------------------------------------------------------------- data types
@dataclass
class RGBDSequence:
    """Frames from one source (``rgbd_folder.RGBDFrame``: RGB, raw depth + encoding,
    CameraInfo fields, stamps, frame id) and what is known about the source."""

    name: str
    frames: List[RGBDFrame]
    fps: float
    synthetic_depth: bool = False
    description: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)   # e.g. the sample's true distances

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[RGBDFrame]:
        return iter(self.frames)

    @property
    def camera_info(self) -> Dict[str, Any]:
        return self.frames[0].camera_info

    @property
    def frame_id(self) -> str:
        return self.frames[0].frame_id or "camera_color_optical_frame"

    def camera(self, frame: Optional[RGBDFrame] = None):
        """The colour camera as a ``core.camera.CameraModel`` (of ``frame``, default the first)."""
        from ..core.camera import CameraModel
        return CameraModel.from_camera_info_dict((frame or self.frames[0]).camera_info)

    def stamps(self) -> np.ndarray:
        """Colour stamps (s); frames without a recorded stamp get index / fps."""
        return np.array([f.stamp_s if f.stamp_s is not None else i / self.fps
                         for i, f in enumerate(self.frames)], np.float64)

    def label(self) -> str:
        """One line for printed output and picture titles."""
        return f"{self.name} [SYNTHETIC DEPTH]" if self.synthetic_depth else self.name


# ----------------------------------------------------------------------- recorded folders
def load_rgbd_dir(path: Union[str, Path], max_frames: Optional[int] = None) -> RGBDSequence:
    """Recorded RGB-D frames from a folder (layouts: ``rgbd_folder``)."""
    root = Path(path).expanduser()
    frames = load_rgbd_folder(root, limit=max_frames)
    info = frames[0].camera_info
    fps = float(info.get("frame_rate_hz", 0) or 0)
    stamps = [f.stamp_s for f in frames if f.stamp_s is not None]
    if not fps > 0:
        span = (stamps[-1] - stamps[0]) if len(stamps) == len(frames) > 1 else 0.0
        fps = (len(frames) - 1) / span if span > 0 else 30.0
    return RGBDSequence(root.name, frames, fps, False,
                        f"{len(frames)} recorded frames from {root}")


def looped(seq: RGBDSequence, n: int, reset_every: int = 0,
           gap_s: Optional[float] = None) -> Iterator[Tuple[int, float]]:
    """``n`` steps cycling through ``seq`` as ``(frame index, stamp_s)``. Stamps keep increasing
    (``gap_s``, default one frame period, across the wrap-around) except at every
    ``reset_every``-th wrap (0 = never), where they jump back to the recorded stamps, as a looping
    bag player does."""
    if not seq.frames:
        raise ValueError(f"sequence '{seq.name}' has no frames")
    period = 1.0 / seq.fps if seq.fps > 0 else 1.0 / 30.0
    stamps = seq.stamps()
    span = float(stamps[-1] - stamps[0]) + (gap_s or period)
    offset, wraps = 0.0, 0
    for i in range(n):
        k = i % len(seq.frames)
        if k == 0 and i > 0:
            wraps += 1
            offset = 0.0 if (reset_every and wraps % reset_every == 0) else offset + span
        yield k, float(stamps[k]) + offset


def sample_frames_summary(seq: RGBDSequence) -> str:
    """A short human-readable description (source, size, frames, rate, synthetic or not)."""
    f0 = seq.frames[0]
    h, w = f0.rgb.shape[:2]
    depth = "no depth" if f0.depth is None else (
        "SYNTHETIC depth" if seq.synthetic_depth else "recorded depth")
    return f"{seq.label()}: {len(seq)} frames {w}x{h} @ {seq.fps:g} Hz, {depth}"
