"""ros.compat: the fallback synchroniser (and the real message_filters one where installed), the
static TF buffer, static transform parsing and the fallback CvBridge."""
import time

import numpy as np
import pytest

from ros_env import isolated_domain_id, require_ros

pytestmark = pytest.mark.ros


class FakeFilter:
    """A message_filters input: registerCallback + emit."""

    def __init__(self):
        self.callbacks = []

    def registerCallback(self, cb, *args):  # noqa: N802
        self.callbacks.append((cb, args))
        return len(self.callbacks) - 1

    def emit(self, msg):
        for cb, args in self.callbacks:
            cb(msg, *args)


def _msg(t: float, tag: str = ""):
    from sensor_msgs.msg import Image
    m = Image()
    ns = int(round(t * 1e9))
    m.header.stamp.sec, m.header.stamp.nanosec = ns // 10**9, ns % 10**9
    m.header.frame_id = tag
    return m


def _implementations():
    require_ros()
    from pose_perception.ros import compat
    impls = [compat.FallbackApproximateTimeSynchronizer]
    try:
        import message_filters
        impls.append(message_filters.ApproximateTimeSynchronizer)
    except ImportError:
        pass
    return impls


def _sync(impl, queue=10, slop=0.1):
    a, b = FakeFilter(), FakeFilter()
    s = impl([a, b], queue, slop)
    out = []
    s.registerCallback(lambda x, y: out.append((x.header.frame_id, y.header.frame_id)))
    return a, b, s, out


@pytest.fixture(params=["fallback", "message_filters"])
def impl(request):
    impls = _implementations()
    if request.param == "message_filters":
        if len(impls) < 2:
            pytest.skip("message_filters not installed (the fallback is tested)")
        return impls[1]
    return impls[0]


def test_equal_stamps_pair_in_input_order(impl):
    a, b, _, out = _sync(impl)
    for i in range(5):
        a.emit(_msg(1 + i / 30, f"c{i}"))
        b.emit(_msg(1 + i / 30, f"d{i}"))
    assert out == [(f"c{i}", f"d{i}") for i in range(5)]


def test_offsets_within_slop_pair_and_beyond_slop_do_not(impl):
    # tue_hsr-like: the depth image is stamped 0.2 s before the colour image
    a, b, _, out = _sync(impl, slop=0.3)
    b.emit(_msg(10.0, "d"))
    a.emit(_msg(10.2, "c"))
    assert out == [("c", "d")]
    a2, b2, _, out2 = _sync(impl, slop=0.1)
    b2.emit(_msg(10.0, "d"))
    a2.emit(_msg(10.2, "c"))
    assert out2 == []


def test_new_message_takes_the_closest_partner(impl):
    a, b, _, out = _sync(impl, slop=0.1)
    b.emit(_msg(1.00, "d0"))
    b.emit(_msg(1.04, "d1"))
    a.emit(_msg(1.05, "c"))
    assert out == [("c", "d1")]


def test_queues_stay_bounded(impl):
    a, b, s, out = _sync(impl, queue=4)
    for i in range(50):
        a.emit(_msg(i * 1.0, "c"))
    assert out == [] and max(len(q) for q in s.queues) <= 4


def test_fallback_discards_messages_older_than_an_emitted_set():
    require_ros()
    from pose_perception.ros.compat import FallbackApproximateTimeSynchronizer
    a, b, s, out = _sync(FallbackApproximateTimeSynchronizer)
    a.emit(_msg(1.0, "c_old"))
    a.emit(_msg(2.0, "c_new"))
    b.emit(_msg(2.0, "d_new"))
    b.emit(_msg(1.0, "d_old"))      # late: would only make a stale pair
    assert out == [("c_new", "d_new")]
    assert all(len(q) <= 1 for q in s.queues)


def test_fallback_validates_arguments_and_ignores_headerless_messages():
    require_ros()
    from pose_perception.ros.compat import FallbackApproximateTimeSynchronizer as Sync
    with pytest.raises(ValueError, match="queue_size"):
        Sync([FakeFilter()], 0, 0.1)
    with pytest.raises(ValueError, match="slop"):
        Sync([FakeFilter()], 3, -1.0)
    a, b, s, out = _sync(Sync)
    a.emit(object())
    assert all(len(q) == 0 for q in s.queues) and out == []


def test_parse_static_transform_quaternion_and_rpy():
    require_ros()
    from pose_perception.ros.compat import parse_static_transform
    p, c, T = parse_static_transform("base_link camera 1 2 3 0 0 0.7071068 0.7071068")
    assert (p, c) == ("base_link", "camera")
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-6)
    _, _, T2 = parse_static_transform("a b 0 0 0 0 0 1.5707963")     # yaw 90 degrees
    np.testing.assert_allclose(T2[:3, :3], T[:3, :3], atol=1e-6)
    for bad in ("a b 1 2 3", "a a 0 0 0 0 0 0 1", "a b x 0 0 0 0 0 1", "a b 0 0 0 0 0 0 0"):
        with pytest.raises(ValueError):
            parse_static_transform(bad)


def test_static_buffer_composes_chains_and_raises_clear_lookup_errors():
    require_ros()
    from pose_perception.core import geometry as geo
    from pose_perception.ros.compat import (FallbackLookupException, StaticTransformBuffer,
                                            lookup_matrix, parse_static_transform,
                                            transform_stamped)
    buf = StaticTransformBuffer()
    for spec in ("base_link camera_link 0.1 0 1.2 0 0 0 1",
                 "camera_link camera_color_optical_frame 0 0 0 -0.5 0.5 -0.5 0.5",
                 "map base_link 5 0 0 0 0 0 1"):
        buf.set_transform_static(transform_stamped(*parse_static_transform(spec)), "test")
    # a point 2 m in front of the optical frame is 2 m ahead of the robot, 1.2 m up
    T = lookup_matrix(buf, "base_link", "camera_color_optical_frame", None)
    np.testing.assert_allclose(geo.apply(T, [[0, 0, 2.0]])[0], [2.1, 0, 1.2], atol=1e-9)
    T_inv = lookup_matrix(buf, "camera_color_optical_frame", "map", None)
    np.testing.assert_allclose(T_inv @ lookup_matrix(buf, "map", "camera_color_optical_frame",
                                                     None), np.eye(4), atol=1e-9)
    assert buf.can_transform("map", "camera_color_optical_frame")
    assert not buf.can_transform("map", "odom")
    with pytest.raises(FallbackLookupException, match="'odom' to 'map'.*frames: base_link"):
        buf.lookup_transform("map", "odom", None)


def test_fallback_cv_bridge_roundtrip_and_conversion():
    require_ros()
    from pose_perception.ros.compat import FallbackCvBridge, FallbackCvBridgeError
    br = FallbackCvBridge()
    bgr = np.random.default_rng(1).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    msg = br.cv2_to_imgmsg(bgr)
    assert msg.encoding == "bgr8" and msg.step == 18
    np.testing.assert_array_equal(br.imgmsg_to_cv2(msg), bgr)
    np.testing.assert_array_equal(br.imgmsg_to_cv2(msg, "rgb8"), bgr[..., ::-1])
    depth = np.full((3, 5), 1234, np.uint16)
    dmsg = br.cv2_to_imgmsg(depth)
    assert dmsg.encoding == "16UC1"
    np.testing.assert_array_equal(br.imgmsg_to_cv2(dmsg, "passthrough"), depth)
    with pytest.raises(FallbackCvBridgeError, match="depth encoding"):
        br.imgmsg_to_cv2(dmsg, "rgb8")
    dmsg.step = 2
    with pytest.raises(FallbackCvBridgeError, match="step"):
        br.imgmsg_to_cv2(dmsg)


def test_subscribers_and_synchroniser_over_real_topics():
    require_ros()
    isolated_domain_id()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from pose_perception.ros import compat

    rclpy.init()
    try:
        node = rclpy.create_node("compat_sync_test")
        sa = compat.Subscriber(node, Image, "sync_test/a", qos_profile=10)
        sb = compat.Subscriber(node, Image, "sync_test/b", qos_profile=10)
        sync = compat.ApproximateTimeSynchronizer([sa, sb], 5, 0.05)
        got = []
        sync.registerCallback(lambda x, y: got.append((x.header.frame_id, y.header.frame_id)))
        pa = node.create_publisher(Image, "sync_test/a", 10)
        pb = node.create_publisher(Image, "sync_test/b", 10)
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        deadline = time.monotonic() + 10
        while (pa.get_subscription_count() < 1 or pb.get_subscription_count() < 1) and \
                time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        for i in range(3):
            pb.publish(_msg(5 + i, f"b{i}"))
            pa.publish(_msg(5 + i + 0.01, f"a{i}"))
        while len(got) < 3 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert got == [(f"a{i}", f"b{i}") for i in range(3)]
        assert sa.getTopic() == "sync_test/a"
        node.destroy_node()
    finally:
        rclpy.shutdown()
