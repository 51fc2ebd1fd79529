"""RGB-D frames from a rosbag2 (sqlite3, MCAP) or ROS 1 bag, read with the ``rosbags`` library
(no ROS install needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .rgbd_folder import RGBDFrame
from .sequence import RGBDSequence


# ------------------------------------------------------------------------------ rosbag2 / ROS 1
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/Image")
COMPRESSED_TYPES = ("sensor_msgs/msg/CompressedImage", "sensor_msgs/CompressedImage")
INFO_TYPES = ("sensor_msgs/msg/CameraInfo", "sensor_msgs/CameraInfo")


def is_bag(path: Union[str, Path]) -> bool:
    """A rosbag2 folder (``metadata.yaml``), or a ``.mcap`` / ``.db3`` / ROS 1 ``.bag`` file."""
    p = Path(path)
    return (p.is_dir() and (p / "metadata.yaml").is_file()) or \
        (p.is_file() and p.suffix in (".mcap", ".db3", ".bag"))


def _stamp_s(msg) -> float:
    st = msg.header.stamp
    return float(st.sec) + 1e-9 * float(st.nanosec)


def _info_dict(msg, frame_id: str) -> Dict[str, Any]:
    def arr(name_new, name_old):
        v = getattr(msg, name_new, None)
        v = getattr(msg, name_old) if v is None else v
        return [float(x) for x in np.asarray(v).ravel()]
    return {"width": int(msg.width), "height": int(msg.height),
            "distortion_model": str(msg.distortion_model), "K": arr("k", "K"),
            "D": arr("d", "D"), "R": arr("r", "R"), "P": arr("p", "P"), "frame_id": frame_id}


def _pick(conns, wanted: Optional[str], prefer: Sequence[str], kind: str, path: Path):
    if wanted:
        hits = [c for c in conns if c.topic == wanted]
        if not hits:
            raise ValueError(f"{path}: no {kind} topic '{wanted}'; candidates: "
                             f"{sorted(c.topic for c in conns)}")
        return hits[0]
    for word in prefer:
        hits = [c for c in conns if word in c.topic.lower()]
        if hits:
            return sorted(hits, key=lambda c: c.topic)[0]
    return sorted(conns, key=lambda c: c.topic)[0] if conns else None


def load_bag(path: Union[str, Path], max_frames: Optional[int] = 300,
             color_topic: Optional[str] = None, depth_topic: Optional[str] = None,
             info_topic: Optional[str] = None, slop_s: float = 0.1) -> RGBDSequence:
    """Colour (+ registered depth) frames from a recorded bag: rosbag2 (sqlite3 or MCAP) or
    ROS 1, read with the pure-Python ``rosbags`` library (no ROS install needed).

    Topics are found by type and name unless given: colour = an Image/CompressedImage topic
    whose name mentions 'color'/'rgb'/'image' (not 'depth'); depth = an Image topic whose name
    mentions 'depth' (16UC1 millimetres or 32FC1 metres); CameraInfo = the one beside the colour
    topic. Each colour image is paired with the depth image nearest in stamp (within
    ``slop_s``). At most ``max_frames`` colour frames are kept (they stay in memory)."""
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError as exc:
        raise RuntimeError("reading bags needs the 'rosbags' package (pip install rosbags), "
                           f"or a ROS 2 install with rosbag2: {exc}") from exc
    from ..core.image_codec import decode_image, to_rgb

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"bag {path} does not exist")
    with AnyReader([path], default_typestore=get_typestore(Stores.LATEST)) as reader:
        conns = reader.connections
        images = [c for c in conns if c.msgtype in IMAGE_TYPES + COMPRESSED_TYPES]
        depth_c = _pick([c for c in images if "depth" in c.topic.lower()
                         and c.msgtype in IMAGE_TYPES], depth_topic, ("aligned", "registered",
                                                                      "depth"), "depth", path)
        color_c = _pick([c for c in images if "depth" not in c.topic.lower()], color_topic,
                        ("color", "rgb", "image"), "colour", path)
        if color_c is None:
            raise ValueError(f"{path}: no colour image topic; topics: "
                             f"{sorted((c.topic, c.msgtype) for c in conns)}")
        parent = color_c.topic.rsplit("/", 1)[0]
        infos = [c for c in conns if c.msgtype in INFO_TYPES]
        info_c = _pick([c for c in infos if c.topic.startswith(parent + "/")] or infos,
                       info_topic, ("color", "rgb", "camera_info"), "CameraInfo", path)
        if info_c is None:
            raise ValueError(f"{path}: no CameraInfo topic (needed for 3D)")
        wanted = [c for c in (color_c, depth_c, info_c) if c is not None]
        colours: List[Tuple[float, np.ndarray, str]] = []
        depths: List[Tuple[float, np.ndarray, str]] = []
        info: Optional[Dict[str, Any]] = None
        for conn, _t, raw in reader.messages(connections=wanted):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn is info_c:
                info = info or _info_dict(msg, msg.header.frame_id)
            elif conn is color_c:
                if max_frames is not None and len(colours) >= max_frames:
                    if info is not None and (depth_c is None or (
                            depths and depths[-1][0] > colours[-1][0] + slop_s)):
                        break
                    continue
                if conn.msgtype in COMPRESSED_TYPES:
                    bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
                    if bgr is None:
                        raise ValueError(f"{path}: cannot decode a '{msg.format}' image on "
                                         f"{conn.topic}")
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                else:
                    rgb = to_rgb(decode_image(msg.encoding, msg.height, msg.width, msg.step,
                                              msg.is_bigendian, msg.data), msg.encoding)
                colours.append((_stamp_s(msg), rgb, msg.header.frame_id))
            else:
                enc = "16UC1" if msg.encoding in ("16UC1", "mono16") else msg.encoding
                d = np.array(decode_image(enc, msg.height, msg.width, msg.step,
                                          msg.is_bigendian, msg.data))
                depths.append((_stamp_s(msg), d, enc))
    if not colours:
        raise ValueError(f"{path}: no messages on {color_c.topic}")
    if info is None:
        raise ValueError(f"{path}: no message on {info_c.topic}")
    frames: List[RGBDFrame] = []
    dstamps = np.array([d[0] for d in depths]) if depths else np.zeros(0)
    for i, (st, rgb, fid) in enumerate(colours):
        depth, enc, dst = None, "", None
        if dstamps.size:
            j = int(np.argmin(np.abs(dstamps - st)))
            if abs(dstamps[j] - st) <= slop_s:
                dst, depth, enc = depths[j]
        frames.append(RGBDFrame(f"{i:05d}", rgb, depth, enc, info, stamp_s=st,
                                depth_stamp_s=dst, frame_id=fid or info.get("frame_id", "")))
    span = colours[-1][0] - colours[0][0]
    fps = (len(colours) - 1) / span if span > 0 else 30.0
    n_depth = sum(f.depth is not None for f in frames)
    return RGBDSequence(path.name, frames, fps, False,
                        f"{len(frames)} frames from bag {path} ({color_c.topic}"
                        + (f" + {depth_c.topic}, {n_depth} with depth" if depth_c else
                           ", no depth topic") + ")")
