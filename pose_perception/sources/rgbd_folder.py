"""Read RGB-D recordings stored as files (ROS-free): the layouts of the development data and of
what ``pose-perception`` users save from their cameras.

Two layouts are recognised:

- *sequence*: ``camera_info.yaml`` + ``color/*.png`` (8-bit, BGR as OpenCV writes) +
  ``depth/*.png`` (uint16 millimetres, 0 = no reading), registered to colour, matched by file name;
- *frame folders*: ``<frame>/rgb.png`` + ``<frame>/depth.npy`` (float32 metres, NaN = no reading)
  + ``<frame>/camera_info.yaml`` (with optional ``rgb``/``depth`` entries holding encodings and
  stamps), one sub-folder per frame.

Frames are returned as raw arrays with their ROS encodings (``rgb8``; ``16UC1`` or ``32FC1``) so a
publisher can send exactly what a driver would, plus convenience fields in metres.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import yaml


@dataclass
class RGBDFrame:
    name: str
    rgb: np.ndarray                 # HxWx3 uint8, RGB order
    depth: Optional[np.ndarray]     # raw depth array (uint16 mm or float32 m), None if absent
    depth_encoding: str             # '16UC1' or '32FC1' ('' without depth)
    camera_info: Dict[str, Any]     # CameraInfo-like dict (image_width, K, D, distortion_model...)
    stamp_s: Optional[float] = None           # colour stamp from the recording, if known
    depth_stamp_s: Optional[float] = None     # depth stamp from the recording, if known
    frame_id: str = ""

    @property
    def depth_m(self) -> Optional[np.ndarray]:
        """Depth in metres, float32, NaN where there is no reading."""
        if self.depth is None:
            return None
        from ..core.depth import depth_to_metres
        return depth_to_metres(self.depth, self.depth_encoding)


def _read_png_rgb(path: Path) -> np.ndarray:
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _stamp(entry: Any) -> Optional[float]:
    if isinstance(entry, dict) and "stamp" in entry:
        return float(entry["stamp"])
    return None


def load_rgbd_folder(path: str | Path, limit: Optional[int] = None) -> List[RGBDFrame]:
    """All frames of a recording folder (see module docstring), sorted by name."""
    import cv2

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"RGB-D folder not found: {root}")
    frames: List[RGBDFrame] = []
    if (root / "color").is_dir():
        info = yaml.safe_load((root / "camera_info.yaml").read_text())
        rate = float(info.get("frame_rate_hz", 30) or 30)
        for i, colour in enumerate(sorted((root / "color").glob("*.png"))[:limit]):
            dpath = root / "depth" / colour.name
            depth = cv2.imread(str(dpath), cv2.IMREAD_UNCHANGED) if dpath.exists() else None
            if depth is not None and depth.dtype != np.uint16:
                raise ValueError(f"{dpath}: expected a uint16 PNG (millimetres), got {depth.dtype}")
            frames.append(RGBDFrame(colour.stem, _read_png_rgb(colour), depth,
                                    "16UC1" if depth is not None else "", info,
                                    stamp_s=i / rate, depth_stamp_s=i / rate,
                                    frame_id=str(info.get("frame_id", ""))))
        return frames
    for sub in sorted(p for p in root.iterdir() if (p / "rgb.png").exists())[:limit]:
        info = yaml.safe_load((sub / "camera_info.yaml").read_text())
        depth = np.load(sub / "depth.npy").astype(np.float32) if (sub / "depth.npy").exists() \
            else None
        frames.append(RGBDFrame(sub.name, _read_png_rgb(sub / "rgb.png"), depth,
                                "32FC1" if depth is not None else "", info,
                                stamp_s=_stamp(info.get("rgb")) or _stamp(info),
                                depth_stamp_s=_stamp(info.get("depth")),
                                frame_id=str(info.get("frame_id", ""))))
    if not frames:
        raise ValueError(f"{root}: no RGB-D frames (expected color/ + depth/ + camera_info.yaml, "
                         "or <frame>/rgb.png + depth.npy + camera_info.yaml)")
    return frames
