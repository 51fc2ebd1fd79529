"""ROS messages -> core types: SkeletonArray / FaceLandmarksArray -> people, faces and the safety
monitor's observations (the conventions of the messages: ``conversions.py``)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np


from ..core import geometry as geo
from ..core.lifting import joint_radii
from ..core.safety import PersonObservation
from ..core.types import Face, Hand, Keypoints, Person
from ..msg import FaceLandmarks, FaceLandmarksArray, Keypoint, Skeleton, SkeletonArray

NAN = float("nan")
FACE_LAYOUTS = ("face468", "ibug68")


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
