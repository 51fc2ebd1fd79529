"""Core types <-> ROS messages: FrameResult -> SkeletonArray / FaceLandmarksArray, CameraInfo <->
CameraModel, Image <-> numpy, SkeletonArray -> safety observations, stamps <-> seconds.

Conventions of the messages (msg/*.msg): every keypoint of a layout is always present (index i
is always the same joint); 3D fields are NaN with ``position_valid`` false when invalid; headers
carry the colour image's stamp and the frame of the 3D fields. An optional 4x4 transform
``T_out_cam`` moves every 3D field (points, centroid, head pose; velocity rotated) from the
colour camera's optical frame to the output frame.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import CameraInfo, Image

from ..core import geometry as geo
from ..core.camera import CameraModel
from ..core.image_codec import decode_image, encode_image
from ..core.layouts import FACE468_TO_IBUG68
from ..core.lifting import joint_radii
from ..core.safety import PersonObservation
from ..core.types import Face, FrameResult, Hand, Keypoints, Person
from ..msg import (FaceLandmarks, FaceLandmarksArray, Keypoint, PersonInteraction,
                   PersonInteractionArray, Skeleton, SkeletonArray)

NAN = float("nan")
FACE_LAYOUTS = ("face468", "ibug68")


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
                         face_layout: str = "face468"
                         ) -> Tuple[SkeletonArray, FaceLandmarksArray]:
    """The SkeletonArray and FaceLandmarksArray of one frame. ``header``: colour image stamp and
    the output frame; ``T_out_cam``: camera optical frame -> output frame (None = identity)."""
    T = None if T_out_cam is None or geo.is_identity(T_out_cam) else T_out_cam
    sk = SkeletonArray(depth_used=bool(depth_used))
    sk.header = header
    sk.skeletons = [person_to_skeleton(p, header, T, hands) for p in result.persons]
    fa = FaceLandmarksArray()
    fa.header = header
    fa.faces = [face_to_msg(f, header, T, face_layout) for f in result.faces]
    return sk, fa


_GAZE_SOURCES = {"eyes": PersonInteraction.GAZE_SOURCE_EYES,
                 "head": PersonInteraction.GAZE_SOURCE_HEAD}


def interaction_to_msg(it, T: Optional[np.ndarray] = None) -> PersonInteraction:
    """A core ``interaction.PersonInteraction`` as a message (gaze moved by ``T``)."""
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
    return m


def interactions_to_msg(interactions, header, T: Optional[np.ndarray] = None
                        ) -> PersonInteractionArray:
    out = PersonInteractionArray(people=[interaction_to_msg(it, T) for it in interactions])
    out.header = header
    return out


# ------------------------------------------------------------------------ messages -> core
def keypoint_msgs_to_arrays(kps: Sequence[Keypoint]):
    """(xy (N, 2), confidence (N,), xyz (N, 3) NaN where invalid, valid (N,))."""
    n = len(kps)
    xy = np.empty((n, 2))
    conf = np.empty(n)
    xyz = np.full((n, 3), np.nan)
    valid = np.zeros(n, bool)
    for i, k in enumerate(kps):
        xy[i] = (k.x, k.y)
        conf[i] = k.confidence
        if k.position_valid:
            xyz[i] = (k.position.x, k.position.y, k.position.z)
            valid[i] = True
    valid &= np.all(np.isfinite(xyz), axis=1)
    return xy, conf, xyz, valid


def _keypoints_from_msgs(layout: str, kps: Sequence[Keypoint]) -> Keypoints:
    xy, conf, xyz, valid = keypoint_msgs_to_arrays(kps)
    out = Keypoints(layout, xy, np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0))
    if valid.any():
        out.init_3d()
        out.xyz[valid] = xyz[valid]
        out.xyz_valid[:] = valid
        sigma = np.array([k.position_sigma for k in kps], np.float32)
        out.xyz_sigma[valid] = sigma[valid]
        out.xyz_source[valid] = [int(kps[i].position_source) for i in np.flatnonzero(valid)]
    return out


def skeleton_msg_to_person(s: Skeleton) -> Person:
    """A Skeleton message back as a core :class:`Person`: body keypoints (2D, and 3D where
    ``position_valid``), box, confidence, track id, centroid, hands (21 points each); the message
    frame is kept as is; ``velocity`` when ``velocity_valid``. Not carried by the message, so
    None/empty: ``world`` (the model's metric 3D: no model fill when such a person is lifted),
    ``face``, ``roi``.
    Raises ``ValueError`` for an unknown layout or a keypoint count that does not match it."""
    from ..core.layouts import get_layout
    n = get_layout(s.layout).size     # ValueError naming the known layouts
    if len(s.keypoints) != n:
        raise ValueError(f"skeleton of layout '{s.layout}' has {len(s.keypoints)} keypoints, "
                         f"the layout has {n}")
    box = np.array([s.bbox_x_min, s.bbox_y_min, s.bbox_x_max, s.bbox_y_max], np.float64)
    p = Person(body=_keypoints_from_msgs(s.layout, s.keypoints), box=box,
               score=float(s.confidence), track_id=int(s.track_id), found_by=int(s.found_by),
               centroid_sigma=float(s.centroid_sigma))
    if s.centroid_valid and is_finite_point(s.centroid):
        p.centroid = np.array([s.centroid.x, s.centroid.y, s.centroid.z])
    if s.velocity_valid and is_finite_point(s.velocity):
        p.velocity = np.array([s.velocity.x, s.velocity.y, s.velocity.z])
    for side, kps, conf in (("left", s.left_hand, s.left_hand_confidence),
                            ("right", s.right_hand, s.right_hand_confidence)):
        if len(kps) == 21:
            p.hands.append(Hand(_keypoints_from_msgs("hand21", kps), side, float(conf)))
        elif len(kps):
            raise ValueError(f"skeleton's {side} hand has {len(kps)} keypoints, not 21")
    return p


def face_msg_to_face(f: FaceLandmarks) -> Face:
    """A FaceLandmarks message back as a core :class:`Face` (mesh in the message's layout, 2D
    and 3D where ``position_valid``, box, confidence, ids); the head pose is not carried back.
    Raises ``ValueError`` for an unknown layout or a landmark count that does not match it."""
    from ..core.layouts import get_layout
    if f.layout not in FACE_LAYOUTS:
        raise ValueError(f"face layout must be one of {FACE_LAYOUTS}, got '{f.layout}'")
    n = get_layout(f.layout).size
    if len(f.landmarks) != n:
        raise ValueError(f"face of layout '{f.layout}' has {len(f.landmarks)} landmarks, the "
                         f"layout has {n}")
    box = np.array([f.bbox_x_min, f.bbox_y_min, f.bbox_x_max, f.bbox_y_max], np.float64)
    return Face(mesh=_keypoints_from_msgs(f.layout, f.landmarks), box=box,
                score=float(f.confidence), track_id=int(f.face_id),
                associated=bool(f.associated))


def skeletons_to_observations(msg: SkeletonArray, T_robot_frame: Optional[np.ndarray] = None
                              ) -> List[PersonObservation]:
    """One safety observation per skeleton, points moved by ``T_robot_frame`` (message frame ->
    robot frame; None = identity). Hand points, when present, follow the body's points: index
    ``len(keypoints) + i`` is ``left_hand[i]``, then the right hand's (see
    :func:`observation_point_name`)."""
    out = []
    for s in msg.skeletons:
        vel = None
        if s.velocity_valid:
            vel = np.array([s.velocity.x, s.velocity.y, s.velocity.z])
            if T_robot_frame is not None:
                vel = geo.rotate(T_robot_frame, vel)[0]
        kps = list(s.keypoints) + list(s.left_hand) + list(s.right_hand)
        radius = np.concatenate([np.zeros(0)] + [
            joint_radii(layout, len(k)) for layout, k in
            ((s.layout, s.keypoints), ("hand21", s.left_hand), ("hand21", s.right_hand))
            if len(k)])
        if s.found_by == Skeleton.FOUND_BY_BOX and s.centroid_valid:
            kps.append(_box_surface_keypoint(s))
            radius = np.append(radius, 0.0)        # measured on the surface already
        out.append(_observation(int(s.track_id), kps, s.layout, T_robot_frame, vel, radius))
    return out


def _box_surface_keypoint(s: Skeleton) -> Keypoint:
    """A box-only person's measured nearest surface (``centroid``) as one more point for the
    safety monitor (named ``box_surface``, see :func:`observation_point_name`)."""
    k = Keypoint(x=NAN, y=NAN, confidence=float(s.confidence), position_valid=True,
                 position_sigma=float(s.centroid_sigma), position_source=Keypoint.SOURCE_DEPTH)
    k.position.x, k.position.y, k.position.z = s.centroid.x, s.centroid.y, s.centroid.z
    return k


def faces_to_observations(msg: FaceLandmarksArray, T_robot_frame: Optional[np.ndarray] = None
                          ) -> List[PersonObservation]:
    """One safety observation per face that belongs to no skeleton (a person whose body is out
    of view, e.g. right in front of the camera), with its landmarks' 3D; associated faces are
    left out (their skeleton stands for the person)."""
    return [_observation(int(f.face_id), list(f.landmarks), f.layout, T_robot_frame)
            for f in msg.faces if not f.associated]


def _observation(track_id: int, kps: Sequence[Keypoint], layout: str,
                 T_robot_frame: Optional[np.ndarray], velocity: Optional[np.ndarray] = None,
                 radius: Optional[np.ndarray] = None) -> PersonObservation:
    """With each point's position_sigma and whether it was inferred (SOURCE_MODEL); ``radius``
    None: the layout's body radii (see core.safety.PersonObservation)."""
    _, conf, xyz, valid = keypoint_msgs_to_arrays(kps)
    if T_robot_frame is not None:
        xyz = geo.apply(T_robot_frame, xyz)
    sigma = np.array([k.position_sigma for k in kps], np.float64)
    inferred = np.array([k.position_source == Keypoint.SOURCE_MODEL for k in kps], bool)
    return PersonObservation(track_id, xyz, valid, conf, velocity, layout, sigma, inferred,
                             radius)


def observation_point_name(skeleton: Skeleton, index: int) -> str:
    """Name of point ``index`` of :func:`skeletons_to_observations`' person (body joints by
    layout, then ``left_hand.<joint>`` / ``right_hand.<joint>``)."""
    from ..core.layouts import LAYOUTS
    nb, nl = len(skeleton.keypoints), len(skeleton.left_hand)
    if index < 0:
        return ""
    if index < nb:
        lay = LAYOUTS.get(skeleton.layout)
        return lay.names[index] if lay is not None and index < lay.size else f"keypoint_{index}"
    hand = LAYOUTS["hand21"].names
    if skeleton.found_by == Skeleton.FOUND_BY_BOX and \
            index == nb + nl + len(skeleton.right_hand):
        return "box_surface"
    if index < nb + nl:
        return "left_hand." + hand[index - nb] if index - nb < len(hand) else "left_hand"
    j = index - nb - nl
    return "right_hand." + hand[j] if j < len(hand) else "right_hand"


def is_finite_point(p) -> bool:
    return all(math.isfinite(v) for v in (p.x, p.y, p.z))
