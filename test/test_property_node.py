"""Property-based test (hypothesis) of pose_node's whole per-frame path: random but well-typed
colour Image, depth Image and CameraInfo messages with random stamps (backwards, duplicated,
jumping) go through ``PoseNode.process_pair`` - decoding, depth conversion, registered and
unregistered depth, the real core Perception (lifting, association, tracking, smoothing) around
a keypoint stage that returns random people, conversion, markers, debug image, publishing.
Nothing raises: a bad message is skipped or processed in 2D, never a frame error."""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from test_property_codec import camera_infos, image_fields
from test_property_core import random_person
from test_ros_pose_node import info_msg

pytestmark = pytest.mark.ros
_ids = itertools.count()


class RandomKeypoints:
    """A keypoint stage that returns 0-3 random people (keypoints inside and outside the image,
    NaN scores, faces, hands) for any image."""

    provider = "CPUExecutionProvider"

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def reset(self):
        pass

    def process(self, rgb, stamp_s=None):
        from pose_perception.core.types import FrameResult
        h, w = rgb.shape[:2]
        bad = float(self.rng.choice([0.0, 0.1, 0.5]))
        return FrameResult(persons=[random_person(self.rng, w, h, bad)
                                    for _ in range(int(self.rng.integers(0, 4)))])


@pytest.fixture(scope="module")
def nodes(ros):
    """Two pose nodes (registered and unregistered depth) with markers and debug image
    subscribed, so every output path runs."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    from pose_perception.core.perception import Perception, PerceptionConfig
    from pose_perception.ros.pose_node import PoseNode

    def factory(cfg):
        cfg = {k: v for k, v in cfg.items() if k != "keypoints"}
        return Perception(PerceptionConfig.from_dict(cfg), keypoints=RandomKeypoints())
    made = {}
    io = ros.create_node("prop_io")
    for registered in (True, False):
        ns = f"/prop{next(_ids)}"
        params = {"depth_registered": registered, "log_period_s": 60.0,
                  "static_transforms": ["cam depth 0.05 0 0 0 0 0 1"]}
        node = PoseNode(factory, namespace=ns, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        io.create_subscription(MarkerArray, ns + "/people/markers", lambda m: None, 1)
        io.create_subscription(Image, ns + "/people/debug_image", lambda m: None, 1)
        made[registered] = node
    import time
    end = time.monotonic() + 5
    while time.monotonic() < end and not all(
            n.pub_markers.get_subscription_count() and n.pub_debug.get_subscription_count()
            for n in made.values()):
        time.sleep(0.02)
    yield made
    for n in made.values():
        n.destroy_node()
    io.destroy_node()


def image_msg(fields, t, frame):
    from sensor_msgs.msg import Image

    from pose_perception.ros.conversions import sec_to_stamp
    enc, h, w, step, big, data = fields
    msg = Image(height=h, width=w, encoding=enc, is_bigendian=big, step=step)
    msg.data = data
    msg.header.stamp = sec_to_stamp(t)
    msg.header.frame_id = frame
    return msg


COLOUR = ["rgb8", "rgb8", "bgr8", "mono8", "rgba8", "yuv422", "16UC1", "bayer_rggb8"]
DEPTH = ["16UC1", "16UC1", "32FC1", "32FC1", "mono8"]
STEPS = st.sampled_from([0.033] * 6 + [0.0, -0.01, -5.0, 2.0, 1e4])


SANE = st.sampled_from([True, True, False])      # mostly well-formed, so frames get through


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(colour=image_fields(COLOUR, SANE),
       depth=st.sampled_from([False, True, True]).flatmap(
           lambda k: image_fields(DEPTH, SANE) if k else st.none()),
       same_size=st.booleans(),
       info=st.sampled_from([None, "matching", "matching", "matching", "other"]).flatmap(
           lambda k: camera_infos() if k == "other" else st.just(k)),
       depth_info=st.sampled_from([None, "matching", "other"]).flatmap(
           lambda k: camera_infos() if k == "other" else st.just(k)),
       registered=st.booleans(), steps=st.lists(STEPS, min_size=1, max_size=3))
def test_random_messages_never_make_a_frame_fail(nodes, colour, depth, same_size, info,
                                                 depth_info, registered, steps):
    node = nodes[registered]
    errors_before = node.diag.counters.get("frame errors", 0)
    enc, h, w = colour[:3]
    if depth is not None and same_size and depth[1:3] != (h, w) and h and w:
        # the same depth, cropped or tiled to the colour image's size
        from pose_perception.core.image_codec import decode_image, encode_image
        try:
            raw = decode_image(depth[0], *depth[1:5], depth[5])
            raw = np.resize(np.ascontiguousarray(raw).ravel(), (h, w))
            raw = raw.astype(raw.dtype.newbyteorder("="))
            hh, ww, step, data = encode_image(raw, depth[0], bool(depth[4]))
            depth = (depth[0], hh, ww, step, depth[4], data)
        except Exception:       # an undecodable depth stays as it is
            pass
    if info == "matching":
        info = info_msg("cam", size=(max(w, 1), max(h, 1)), f=float(max(w, 1)))
    if depth_info == "matching" and depth is not None:
        depth_info = info_msg("depth", size=(max(depth[2], 1), max(depth[1], 1)),
                              f=float(max(depth[2], 1)))
    elif depth_info == "matching":
        depth_info = None
    node._color_info, node._depth_info = info, depth_info
    t = node._last_processed_stamp or 1000.0
    for step in steps:
        t = max(0.0, t + step)
        c = image_msg(colour, t, "cam")
        d = None if depth is None else image_msg(depth, t, "depth")
        result = node.process_pair(c, d)          # must not raise
        if result is not None:
            assert node._last_processed_stamp == pytest.approx(t)
            lifted = any(p.body.xyz is not None and p.body.xyz_valid.any()
                         for p in result.persons)
            event("processed, some 3D" if lifted else "processed, 2D only")
        else:
            event("skipped")
    assert node.diag.counters.get("frame errors", 0) == errors_before
