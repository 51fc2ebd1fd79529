"""Use ``message_filters``, ``cv_bridge`` and ``tf2_ros`` where installed (any apt ROS 2), else
small equivalents of this package with the same interface and semantics (the PyPI ROS 2 wheels
ship none of the three).

- :class:`Subscriber` / :class:`ApproximateTimeSynchronizer` (message_filters API):
  ``Subscriber(node, msg_type, topic, qos_profile=...)``, ``registerCallback(cb, *args)``,
  ``ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless=False)``. Approximate
  policy as in message_filters' Python implementation: each input keeps up to ``queue_size``
  messages keyed by stamp; a new message is matched with one message of every other input whose
  stamps all lie within ``slop`` seconds of each other (closest stamps first), the set is emitted
  once and its messages removed. The fallback also discards messages older than an emitted set
  (they can only form stale sets), which bounds latency.
- :class:`CvBridge` (``imgmsg_to_cv2``, ``cv2_to_imgmsg``; ``CvBridgeError``): the fallback is
  built on :mod:`pose_perception.core.image_codec`.
- TF: :func:`create_tf_buffer` gives a ``tf2_ros.Buffer`` with a ``TransformListener`` when
  tf2_ros is installed, else a :class:`StaticTransformBuffer` that knows only the static
  transforms given as parameters. Both have ``lookup_transform(target, source, time, timeout)``
  and raise :data:`LookupException` / :data:`TF_EXCEPTIONS` when a transform is unknown.

Set ``POSE_PERCEPTION_FORCE_FALLBACK=1`` to use the fallbacks even where the real libraries exist
(the fallback classes are always importable under ``Fallback*`` names for tests).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.geometry import invert, make_transform, quat_from_rpy
from ..core.image_codec import ImageDecodeError, decode_image, encode_image, to_rgb
from .transforms import matrix_to_transform_msg, transform_msg_to_matrix

_FORCE = os.environ.get("POSE_PERCEPTION_FORCE_FALLBACK", "") not in ("", "0", "false")


def _stamp_ns(stamp) -> int:
    """builtin_interfaces/Time (or rclpy Time) -> integer nanoseconds."""
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# =============================================================================== message_filters
class FallbackSimpleFilter:
    """Base of the filters: callbacks registered with :meth:`registerCallback`."""

    def __init__(self) -> None:
        self.callbacks: Dict[int, Tuple[Callable, tuple]] = {}

    def registerCallback(self, cb: Callable, *args) -> int:  # noqa: N802 (message_filters API)
        conn = len(self.callbacks)
        self.callbacks[conn] = (cb, args)
        return conn

    def signalMessage(self, *msg) -> None:  # noqa: N802
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class FallbackSubscriber(FallbackSimpleFilter):
    """A subscription whose messages go to the registered callbacks (message_filters API):
    ``FallbackSubscriber(node, msg_type, topic, qos_profile=10, **kwargs)``."""

    def __init__(self, node, msg_type, topic: str, qos_profile=10, **kwargs) -> None:
        super().__init__()
        self.node, self.topic = node, topic
        self.sub = node.create_subscription(msg_type, topic, self.callback, qos_profile, **kwargs)

    def callback(self, msg) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802
        return self.topic

    def __getattr__(self, key):
        return getattr(self.__dict__["sub"], key)


class FallbackApproximateTimeSynchronizer(FallbackSimpleFilter):
    """Approximate-time synchroniser with message_filters' constructor and callback signature
    (see the module docstring for the policy). Thread-safe; callbacks run outside the lock."""

    def __init__(self, fs: Sequence, queue_size: int, slop: float,
                 allow_headerless: bool = False) -> None:
        super().__init__()
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not float(slop) >= 0:
            raise ValueError(f"slop must be >= 0 seconds, got {slop}")
        self.queue_size = int(queue_size)
        self.slop_ns = int(round(float(slop) * 1e9))
        self.allow_headerless = allow_headerless
        self.lock = threading.Lock()
        self.queues: List[Dict[int, object]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, q, i)
                                  for i, (f, q) in enumerate(zip(fs, self.queues))]

    @property
    def slop(self) -> float:
        return self.slop_ns / 1e9

    def add(self, msg, my_queue: Dict[int, object], my_queue_index: Optional[int] = None) -> None:
        header = getattr(msg, "header", None)
        if header is None or not hasattr(header, "stamp"):
            if not self.allow_headerless:
                return  # as message_filters: headerless messages are ignored unless allowed
            stamp = time.time_ns()
        else:
            stamp = _stamp_ns(header.stamp)
        out = None
        with self.lock:
            my_queue[stamp] = msg
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            if my_queue_index is None:
                my_queue_index = next(i for i, q in enumerate(self.queues) if q is my_queue)
            chosen = [stamp] * len(self.queues)
            for i, q in enumerate(self.queues):
                if i == my_queue_index:
                    continue
                near = [s for s in q if abs(s - stamp) <= self.slop_ns]
                if not near:
                    return
                chosen[i] = min(near, key=lambda s: (abs(s - stamp), -s))
            if max(chosen) - min(chosen) > self.slop_ns:
                return
            out = [q.pop(s) for q, s in zip(self.queues, chosen)]
            for q, s in zip(self.queues, chosen):   # older messages can only make stale sets
                for old in [t for t in q if t < s]:
                    del q[old]
        self.signalMessage(*out)


try:
    if _FORCE:
        raise ImportError("fallback forced by POSE_PERCEPTION_FORCE_FALLBACK")
    import message_filters as _mf  # type: ignore
    Subscriber = _mf.Subscriber
    ApproximateTimeSynchronizer = _mf.ApproximateTimeSynchronizer
    HAVE_MESSAGE_FILTERS = True
except ImportError:
    Subscriber = FallbackSubscriber
    ApproximateTimeSynchronizer = FallbackApproximateTimeSynchronizer
    HAVE_MESSAGE_FILTERS = False


# ===================================================================================== cv_bridge
class FallbackCvBridgeError(TypeError):
    """Raised by :class:`FallbackCvBridge` (cv_bridge.CvBridgeError is a TypeError too)."""


class FallbackCvBridge:
    """``cv_bridge.CvBridge`` stand-in for the encodings of :mod:`core.image_codec`.

    ``imgmsg_to_cv2(msg, desired_encoding='passthrough')``: 'passthrough' returns the decoded
    array as is; 'rgb8' / 'bgr8' / 'mono8' convert colour encodings (as cv_bridge does).
    ``cv2_to_imgmsg(array, encoding='passthrough', header=None)``: passthrough infers bgr8 /
    mono8 / 16UC1 / 32FC1 / bgra8 from the array, like cv_bridge."""

    def imgmsg_to_cv2(self, img_msg, desired_encoding: str = "passthrough") -> np.ndarray:
        try:
            arr = decode_image(img_msg.encoding, img_msg.height, img_msg.width, img_msg.step,
                               img_msg.is_bigendian, img_msg.data)
            if desired_encoding in ("passthrough", img_msg.encoding):
                return arr
            if desired_encoding not in ("rgb8", "bgr8", "mono8"):
                raise FallbackCvBridgeError(f"conversion to '{desired_encoding}' is not "
                                            "supported by the fallback CvBridge")
            rgb = to_rgb(arr, img_msg.encoding)
        except ImageDecodeError as exc:
            raise FallbackCvBridgeError(str(exc)) from exc
        import cv2
        if desired_encoding == "rgb8":
            return rgb
        if desired_encoding == "bgr8":
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    def cv2_to_imgmsg(self, cvim: np.ndarray, encoding: str = "passthrough", header=None):
        from sensor_msgs.msg import Image
        a = np.asarray(cvim)
        if encoding == "passthrough":
            encoding = _infer_encoding(a)
        try:
            h, w, step, data = encode_image(a, encoding)
        except ImageDecodeError as exc:
            raise FallbackCvBridgeError(str(exc)) from exc
        msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=step)
        msg.data = data
        if header is not None:
            msg.header = header
        return msg


def _infer_encoding(a: np.ndarray) -> str:
    ch = 1 if a.ndim == 2 else a.shape[2]
    table = {("uint8", 1): "mono8", ("uint8", 3): "bgr8", ("uint8", 4): "bgra8",
             ("uint16", 1): "16UC1", ("float32", 1): "32FC1"}
    try:
        return table[(a.dtype.name, ch)]
    except KeyError:
        raise FallbackCvBridgeError(f"cannot infer an encoding for dtype {a.dtype} with {ch} "
                                    "channels") from None


try:
    if _FORCE:
        raise ImportError("fallback forced")
    from cv_bridge import CvBridge, CvBridgeError  # type: ignore
    HAVE_CV_BRIDGE = True
except ImportError:
    CvBridge, CvBridgeError = FallbackCvBridge, FallbackCvBridgeError
    HAVE_CV_BRIDGE = False


# ============================================================================================ TF
class FallbackLookupException(Exception):
    """A transform that is not known (fallback of tf2_ros.LookupException)."""


class FallbackExtrapolationException(Exception):
    """Kept for API symmetry; static transforms never extrapolate."""


def parse_static_transform(spec: str) -> Tuple[str, str, np.ndarray]:
    """``"parent child x y z qx qy qz qw"`` (or ``... x y z roll pitch yaw``, radians) ->
    ``(parent, child, T_parent_child)``. Raises ``ValueError`` with the expected format."""
    parts = str(spec).split()
    fmt = ("expected 'parent_frame child_frame x y z qx qy qz qw' or "
           "'parent_frame child_frame x y z roll pitch yaw'")
    if len(parts) not in (8, 9):
        raise ValueError(f"static transform '{spec}': {fmt}")
    parent, child = parts[0], parts[1]
    try:
        nums = [float(v) for v in parts[2:]]
    except ValueError:
        raise ValueError(f"static transform '{spec}': numbers expected; {fmt}") from None
    if parent == child:
        raise ValueError(f"static transform '{spec}': parent and child frames are the same")
    q = quat_from_rpy(*nums[3:]) if len(nums) == 6 else nums[3:]
    return parent, child, make_transform(nums[:3], q)


def transform_stamped(parent: str, child: str, T: np.ndarray, stamp=None):
    """A ``geometry_msgs/TransformStamped`` (parent = header.frame_id, child_frame_id)."""
    from geometry_msgs.msg import TransformStamped
    ts = TransformStamped()
    ts.header.frame_id, ts.child_frame_id = parent, child
    if stamp is not None:
        ts.header.stamp = stamp
    matrix_to_transform_msg(T, ts.transform)
    return ts


class StaticTransformBuffer:
    """Stand-in for ``tf2_ros.Buffer`` holding static transforms only (from parameters).

    ``set_transform_static(transform_stamped, authority)`` adds an edge; ``lookup_transform(
    target, source, time, timeout=None)`` returns the TransformStamped mapping points in
    ``source`` to ``target`` (composed through the tree; the stamp is the requested one);
    ``can_transform`` tells whether that would succeed. Unknown frames raise
    :class:`FallbackLookupException` naming the known frames."""

    def __init__(self) -> None:
        self._edges: Dict[str, Dict[str, np.ndarray]] = {}

    def set_transform_static(self, ts, authority: str = "") -> bool:
        T = transform_msg_to_matrix(ts.transform)
        p, c = ts.header.frame_id.lstrip("/"), ts.child_frame_id.lstrip("/")
        self._edges.setdefault(p, {})[c] = T             # T_p_c: child -> parent
        self._edges.setdefault(c, {})[p] = invert(T)
        return True

    def frames(self) -> List[str]:
        return sorted(self._edges)

    def _chain(self, target: str, source: str) -> Optional[np.ndarray]:
        """T_target_source by breadth-first search over the frames, or None."""
        if target == source:
            return np.eye(4)
        seen = {source: np.eye(4)}     # frame -> T_frame_source
        todo = deque([source])
        while todo:
            f = todo.popleft()
            for nb, T_f_nb in self._edges.get(f, {}).items():
                if nb in seen:
                    continue
                # T_nb_source = T_nb_f @ T_f_source, and T_nb_f = edges[f][nb]^-1 = edges[nb][f]
                seen[nb] = self._edges[nb][f] @ seen[f]
                if nb == target:
                    return seen[nb]
                todo.append(nb)
        return None

    def can_transform(self, target_frame: str, source_frame: str, time=None, timeout=None,
                      return_debug_tuple: bool = False):
        ok = self._chain(target_frame.lstrip("/"), source_frame.lstrip("/")) is not None
        return (ok, "" if ok else "no static transform chain") if return_debug_tuple else ok

    def lookup_transform(self, target_frame: str, source_frame: str, time=None, timeout=None):
        T = self._chain(target_frame.lstrip("/"), source_frame.lstrip("/"))
        if T is None:
            known = ", ".join(self.frames()) or "none"
            raise FallbackLookupException(
                f"no transform from '{source_frame}' to '{target_frame}': tf2_ros is not "
                f"installed, so only static transforms given as parameters are known (frames: "
                f"{known})")
        stamp = time.to_msg() if hasattr(time, "to_msg") else time
        return transform_stamped(target_frame, source_frame, T, stamp)


try:
    if _FORCE:
        raise ImportError("fallback forced")
    import tf2_ros  # type: ignore
    LookupException = tf2_ros.LookupException
    TF_EXCEPTIONS: Tuple[type, ...] = (tf2_ros.LookupException, tf2_ros.ConnectivityException,
                                       tf2_ros.ExtrapolationException,
                                       tf2_ros.InvalidArgumentException, tf2_ros.TimeoutException)
    HAVE_TF2 = True
except ImportError:
    tf2_ros = None
    LookupException = FallbackLookupException
    TF_EXCEPTIONS = (FallbackLookupException, FallbackExtrapolationException)
    HAVE_TF2 = False


def create_tf_buffer(node, static_transforms: Sequence[str] = ()):
    """(buffer, listener) for ``node``: tf2_ros.Buffer + TransformListener when installed (the
    listener is kept alive by the caller), else (:class:`StaticTransformBuffer`, None). The
    ``static_transforms`` strings (see :func:`parse_static_transform`) are added to either."""
    parsed = [parse_static_transform(s) for s in static_transforms if str(s).strip()]
    if HAVE_TF2:
        buffer = tf2_ros.Buffer(node=node)
        # own spin thread: lookups with a timeout may block a callback or the worker while the
        # listener keeps receiving /tf
        listener = tf2_ros.TransformListener(buffer, node, spin_thread=True)
    else:
        buffer, listener = StaticTransformBuffer(), None
    for parent, child, T in parsed:
        buffer.set_transform_static(transform_stamped(parent, child, T), "parameters")
    return buffer, listener


def lookup_matrix(buffer, target: str, source: str, stamp, timeout_s: float = 0.0) -> np.ndarray:
    """4x4 ``T_target_source`` at ``stamp`` (a builtin_interfaces/Time); raises one of
    :data:`TF_EXCEPTIONS`. ``timeout_s`` > 0 waits that long for the transform (real tf2)."""
    if target.lstrip("/") == source.lstrip("/"):
        return np.eye(4)
    if HAVE_TF2 and not isinstance(buffer, StaticTransformBuffer):
        from rclpy.duration import Duration
        from rclpy.time import Time
        ts = buffer.lookup_transform(target, source, Time.from_msg(stamp),
                                     timeout=Duration(seconds=max(0.0, timeout_s)))
    else:
        ts = buffer.lookup_transform(target, source, stamp)
    return transform_msg_to_matrix(ts.transform)
