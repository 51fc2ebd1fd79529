"""Core types -> ROS messages: FrameResult -> SkeletonArray / FaceLandmarksArray, CameraInfo <->
CameraModel, Image <-> numpy, stamps <-> seconds. Messages -> core types (people, faces, safety
observations) are in ``from_messages.py``.

Conventions of the messages (msg/*.msg): every keypoint of a layout is always present (index i
is always the same joint); 3D fields are NaN with ``position_valid`` false when invalid; headers
carry the colour image's stamp and the frame of the 3D fields. An optional 4x4 transform
``T_out_cam`` moves every 3D field (points, centroid, head pose; velocity rotated) from the
colour camera's optical frame to the output frame.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np

from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import CameraInfo, Image

from ..core import geometry as geo
from ..core.camera import CameraModel
from ..core.image_codec import decode_image, encode_image
from ..core.layouts import FACE468_TO_IBUG68
from ..core.types import Face, FrameResult, Keypoints, Person
from ..msg import (FaceLandmarks, FaceLandmarksArray, Keypoint, PersonInteraction,
                   PersonInteractionArray, Skeleton, SkeletonArray)
from .from_messages import FACE_LAYOUTS, NAN
# messages -> core lives in from_messages.py; these names stay importable from here
from .from_messages import (face_msg_to_face, faces_to_observations,  # noqa: F401
                            keypoint_msgs_to_arrays, observation_point_name,
                            skeleton_msg_to_person, skeletons_to_observations)


# ----------------------------------------------------------------------------------- time
def stamp_to_sec(stamp) -> float:
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def sec_to_stamp(t: float) -> TimeMsg:
    ns = int(round(float(t) * 1e9))
    return TimeMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


# ---------------------------------------------------------------------------------- images
def image_msg_to_array(msg: Image) -> np.ndarray:
    """Decoded pixels of an Image (see :func:`core.image_codec.decode_image`); raises
    ``ImageDecodeError``."""
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                        msg.data)


def array_to_image_msg(array: np.ndarray, encoding: str, header=None) -> Image:
    h, w, step, data = encode_image(array, encoding)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=step)
    msg.data = data
    if header is not None:
        msg.header = header
    return msg


# ------------------------------------------------------------------------------ camera info
def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """CameraInfo -> CameraModel. An uncalibrated (all-zero K, zero size) or NaN calibration
    raises ``ValueError`` with the reason and the message's frame."""
    try:
        return CameraModel.from_camera_info_dict({
            "width": msg.width, "height": msg.height, "K": list(msg.k), "D": list(msg.d),
            "distortion_model": msg.distortion_model, "P": list(msg.p), "R": list(msg.r)})
    except ValueError as exc:
        raise ValueError(f"unusable CameraInfo (frame '{msg.header.frame_id}'): {exc}") from None


def camera_model_to_info(model: CameraModel, header=None) -> CameraInfo:
    """CameraModel -> CameraInfo (R identity and P = [K | 0] when the model has none)."""
    msg = CameraInfo(width=model.width, height=model.height)
    msg.distortion_model = "plumb_bob" if model.distortion_model == "none" else \
        model.distortion_model
    msg.d = [float(v) for v in model.D] if model.D.size else [0.0] * 5
    msg.k = [float(v) for v in model.K.ravel()]
    msg.r = [float(v) for v in (model.R if model.R is not None else np.eye(3)).ravel()]
    P = model.P if model.P is not None else np.hstack([model.K, np.zeros((3, 1))])
    msg.p = [float(v) for v in P.ravel()]
    if header is not None:
        msg.header = header
    return msg


def same_camera_info(a: Optional[CameraInfo], b: Optional[CameraInfo]) -> bool:
    """True when two CameraInfo describe the same calibration (header ignored)."""
    if a is None or b is None:
        return False
    return (a.width == b.width and a.height == b.height
            and a.distortion_model == b.distortion_model and list(a.k) == list(b.k)
            and list(a.d) == list(b.d) and list(a.p) == list(b.p) and list(a.r) == list(b.r))


class CameraModelCache:
    """CameraInfo -> CameraModel, rebuilt only when the calibration changes (CameraInfo arrives
    with every frame; the model, its undistortion maps and the lifter's caches should not).
    ``get`` returns the model or None (``error`` says why); ``scaled`` the model for an image
    of another size, cached too; ``for_image`` the model that fits an image, or why none does."""

    ASPECT_TOLERANCE = 0.01   # image and calibration of other sizes but this close: scaled

    def __init__(self) -> None:
        self.model: Optional[CameraModel] = None
        self.error = ""
        self.changed = False          # True after the get() that rebuilt the model
        self._src: Optional[CameraInfo] = None
        self._scaled: Optional[CameraModel] = None

    def get(self, info: Optional[CameraInfo]) -> Optional[CameraModel]:
        self.changed = False
        if info is None:
            return None
        if info is not self._src and not same_camera_info(info, self._src):
            try:
                self.model, self.error = camera_info_to_model(info), ""
            except ValueError as exc:
                self.model, self.error = None, str(exc)
            self._src, self._scaled, self.changed = info, None, True
        return self.model

    def scaled(self, width: int, height: int) -> CameraModel:
        """The cached model scaled to ``width`` x ``height`` (same field of view)."""
        if self._scaled is None or (self._scaled.width, self._scaled.height) != (width, height):
            self._scaled = self.model.scaled(width, height)
        return self._scaled

    def for_image(self, info: CameraInfo, width: int, height: int
                  ) -> Tuple[Optional[CameraModel], str]:
        """(model, "") for an image of ``width`` x ``height`` its CameraInfo ``info`` describes;
        (the model scaled to the image, why) for an image of another size but the same aspect
        ratio; (None, why) for an invalid CameraInfo or another aspect ratio (2D only)."""
        model = self.get(info)
        if model is None:
            return None, f"{self.error}: publishing 2D only"
        if (model.width, model.height) == (width, height):
            return model, ""
        if abs(model.width / model.height - width / height) > self.ASPECT_TOLERANCE:
            return None, (f"colour image {width}x{height} does not match its CameraInfo "
                          f"{model.width}x{model.height} (other aspect ratio): 2D only")
        return self.scaled(width, height), (f"colour image {width}x{height} but CameraInfo "
                                            f"{model.width}x{model.height}: intrinsics scaled")


# ----------------------------------------------------------------------- results -> messages
def _points_out(kps: Keypoints, T: Optional[np.ndarray]):
    if kps.xyz is None:
        return None, None, None, None
    xyz = kps.xyz if T is None else geo.apply(T, kps.xyz)
    valid = np.asarray(kps.xyz_valid, bool) & np.all(np.isfinite(xyz), axis=1)
    return xyz, valid, kps.xyz_sigma, kps.xyz_source


def keypoints_to_msgs(kps: Keypoints, T: Optional[np.ndarray] = None) -> List[Keypoint]:
    """One Keypoint message per point of ``kps`` (3D moved by ``T`` when given)."""
    xy = kps.xy.tolist()
    score = np.clip(np.nan_to_num(kps.score, nan=0.0), 0.0, 1.0).tolist()
    xyz, valid, sigma, source = _points_out(kps, T)
    out = []
    if xyz is None:
        for (x, y), c in zip(xy, score):
            k = Keypoint(x=float(x), y=float(y), confidence=float(c), position_sigma=NAN)
            k.position.x = k.position.y = k.position.z = NAN
            out.append(k)
        return out
    xyz_l, valid_l = xyz.tolist(), valid.tolist()
    sigma_l = np.asarray(sigma, np.float64).tolist()
    source_l = np.asarray(source, np.uint8).tolist()
    for i, ((x, y), c) in enumerate(zip(xy, score)):
        k = Keypoint(x=float(x), y=float(y), confidence=float(c))
        if valid_l[i]:
            px, py, pz = xyz_l[i]
            k.position.x, k.position.y, k.position.z = px, py, pz
            k.position_valid = True
            k.position_sigma = float(sigma_l[i])
            k.position_source = int(source_l[i])
        else:
            k.position.x = k.position.y = k.position.z = NAN
            k.position_sigma = NAN
        out.append(k)
    return out


def _set_point(msg_point, p: Optional[np.ndarray]) -> bool:
    if p is None or not np.all(np.isfinite(p)):
        msg_point.x = msg_point.y = msg_point.z = NAN
        return False
    msg_point.x, msg_point.y, msg_point.z = (float(v) for v in p)
    return True


def _bbox(msg, box) -> None:
    b = np.asarray(box, np.float64).reshape(-1)
    if b.size != 4:
        b = np.full(4, NAN)
    msg.bbox_x_min, msg.bbox_y_min, msg.bbox_x_max, msg.bbox_y_max = (float(v) for v in b)


def person_to_skeleton(p: Person, header, T: Optional[np.ndarray] = None,
                       hands: bool = True) -> Skeleton:
    s = Skeleton(track_id=max(0, int(p.track_id)), layout=p.body.layout,
                 confidence=float(np.clip(np.nan_to_num(p.score), 0.0, 1.0)),
                 found_by=int(p.found_by), centroid_sigma=float(p.centroid_sigma))
    s.header = header
    s.keypoints = keypoints_to_msgs(p.body, T)
    _bbox(s, p.box)
    c = None if p.centroid is None else (np.asarray(p.centroid, np.float64) if T is None
                                         else geo.apply(T, p.centroid)[0])
    s.centroid_valid = _set_point(s.centroid, c)
    v = None
    if p.velocity is not None and np.all(np.isfinite(p.velocity)):
        v = np.asarray(p.velocity, np.float64) if T is None else geo.rotate(T, p.velocity)[0]
    if v is not None:
        s.velocity.x, s.velocity.y, s.velocity.z = (float(x) for x in v)
        s.velocity_valid = True
    s.has_face = p.face is not None
    if hands:
        for hand in p.hands:
            kps = keypoints_to_msgs(hand.keypoints, T)
            conf = float(np.clip(np.nan_to_num(hand.score), 0.0, 1.0))
            if hand.handedness == "left":
                s.left_hand, s.left_hand_confidence = kps, conf
            elif hand.handedness == "right":
                s.right_hand, s.right_hand_confidence = kps, conf
    return s


def face_to_msg(face: Face, header, T: Optional[np.ndarray] = None,
                layout: str = "face468") -> FaceLandmarks:
    if layout not in FACE_LAYOUTS:
        raise ValueError(f"face layout must be one of {FACE_LAYOUTS}, got '{layout}'")
    f = FaceLandmarks(face_id=max(0, int(face.track_id)), associated=bool(face.associated),
                      skeleton_id=max(0, int(face.track_id)) if face.associated else 0,
                      confidence=float(np.clip(np.nan_to_num(face.score), 0.0, 1.0)),
                      layout=layout)
    f.header = header
    mesh = face.mesh if face.mesh.layout == layout else \
        face.mesh.remap("ibug68", FACE468_TO_IBUG68)
    f.landmarks = keypoints_to_msgs(mesh, T)
    _bbox(f, face.box)
    hp = face.head_pose
    H = None
    if hp is not None and hp.valid and np.all(np.isfinite(hp.position)) and \
            np.all(np.isfinite(hp.orientation)):
        try:
            H = geo.make_transform(hp.position, hp.orientation)
        except ValueError:      # not a rotation (e.g. a zero quaternion): no head pose
            H = None
    if H is not None:
        if T is not None:
            H = T @ H
        q = geo.matrix_to_quat(H[:3, :3])
        pos = f.head_pose.position
        pos.x, pos.y, pos.z = (float(v) for v in H[:3, 3])
        o = f.head_pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in q)
        f.head_pose_valid = True
    else:
        f.head_pose.position.x = f.head_pose.position.y = f.head_pose.position.z = NAN
        f.head_pose.orientation.w = 1.0
    return f


def frame_result_to_msgs(result: FrameResult, header, depth_used: bool,
                         T_out_cam: Optional[np.ndarray] = None, hands: bool = True,
                         face_layout: str = "face468", faces: bool = True
                         ) -> Tuple[SkeletonArray, FaceLandmarksArray]:
    """The SkeletonArray and FaceLandmarksArray of one frame. ``header``: colour image stamp and
    the output frame; ``T_out_cam``: camera optical frame -> output frame (None = identity).
    ``faces`` False leaves the FaceLandmarksArray empty (468 Keypoint messages per face are most
    of the conversion's cost: the node skips them while nobody subscribes)."""
    T = None if T_out_cam is None or geo.is_identity(T_out_cam) else T_out_cam
    sk = SkeletonArray(depth_used=bool(depth_used))
    sk.header = header
    sk.skeletons = [person_to_skeleton(p, header, T, hands) for p in result.persons]
    fa = FaceLandmarksArray()
    fa.header = header
    if faces:
        fa.faces = [face_to_msg(f, header, T, face_layout) for f in result.faces]
    return sk, fa


_GAZE_SOURCES = {"eyes": PersonInteraction.GAZE_SOURCE_EYES,
                 "head": PersonInteraction.GAZE_SOURCE_HEAD}


def interaction_to_msg(it, T: Optional[np.ndarray] = None,
                       stamp_s: float = math.nan) -> PersonInteraction:
    """A core ``interaction.PersonInteraction`` as a message (3D fields moved by ``T``), with its
    body language (``body_language_conversions``) at the frame of ``stamp_s``."""
    from .body_language_conversions import fill_body_language
    m = PersonInteraction(track_id=max(0, int(it.track_id)),
                          looking_at_robot=bool(it.looking),
                          looking_angle=math.radians(it.looking_angle_deg),
                          looking_duration=float(it.looking_duration_s),
                          engagement=int(it.engagement),
                          engagement_level=float(it.engagement_level),
                          distance=float(it.distance_m))
    g = it.gaze
    if g is not None:
        origin = np.asarray(g.origin, np.float64) if T is None else geo.apply(T, g.origin)[0]
        d = np.asarray(g.direction, np.float64) if T is None else geo.rotate(T, g.direction)[0]
        m.gaze_valid = _set_point(m.gaze_origin, origin)
        if m.gaze_valid:
            m.gaze_direction.x, m.gaze_direction.y, m.gaze_direction.z = (float(v) for v in d)
            m.gaze_confidence = float(np.clip(g.confidence, 0.0, 1.0))
            m.gaze_source = _GAZE_SOURCES.get(g.source, PersonInteraction.GAZE_SOURCE_NONE)
    else:
        _set_point(m.gaze_origin, None)
    fill_body_language(m, getattr(it, "body", None), stamp_s, T)
    return m


def interactions_to_msg(interactions, header, T: Optional[np.ndarray] = None
                        ) -> PersonInteractionArray:
    t = stamp_to_sec(header.stamp)
    out = PersonInteractionArray(people=[interaction_to_msg(it, T, t) for it in interactions])
    out.header = header
    return out
