"""Face-to-body association: which skeleton does each detected face belong to?

ROS-free. For every (face, person) pair the body's confident head keypoints (BlazePose nose, eyes,
ears, mouth) are compared with the face:

- ``inside``: the fraction of those head keypoints inside the face box grown by ``box_margin``
  (a pair with fewer than ``min_head_points`` confident head keypoints, or ``inside`` below
  ``min_inside_fraction``, is never matched);
- ``geometry``: when the face has a mesh, the mean distance between the body's nose / eye corners /
  mouth corners and the matching face-mesh vertices, else the distance between the face box
  centre and the mean of the head keypoints, both in units of the face size, clipped to 1.

``cost = 0.5 * (1 - inside) + 0.5 * geometry``; the Hungarian method picks the pairs, and pairs
costing more than ``max_cost`` are rejected. An associated face gets ``person_index``, the body's
``track_id`` and ``associated=True``; the others get ``person_index=-1``, ``track_id=0`` and
``associated=False`` (``Perception`` then gives them ids of their own with a face tracker that
shares the bodies' id counter: ``Tracker.update_faces``).

Run it after the tracker (so the body track ids exist), or call :func:`sync_face_track_ids`
after tracking.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import box_iou_matrix, finite_rows
from .types import Face, FrameResult, Person

# BlazePose-33 head keypoints: nose, eyes (inner, centre, outer), ears, mouth corners
HEAD_BLAZEPOSE33 = tuple(range(11))
# (BlazePose-33 index, face-mesh-468 vertex) pairs of the same facial point. Mesh vertices as in
# FACE468_TO_IBUG68: 1 nose tip; 263/362 the person's left eye outer/inner corner, 33/133 the
# right one; 291/61 the person's left/right mouth corner.
BODY_TO_MESH = ((0, 1), (1, 362), (3, 263), (4, 133), (6, 33), (9, 291), (10, 61))


@dataclass
class AssociationConfig:
    """Parameters of :func:`associate_faces` (units in the names)."""

    min_keypoint_score: float = 0.5    # body head keypoints used
    min_head_points: int = 2           # fewer confident head keypoints: the body gets no face
    box_margin: float = 0.25           # face box grown by this fraction of its size, each side
    min_inside_fraction: float = 0.5   # of the head keypoints inside the grown face box
    max_cost: float = 0.6              # gate on the pair cost in [0, 1]
    duplicate_iou: float = 0.5         # associate_frame: drops a body-less face overlapping an
    #                                    associated one by more than this (same face twice)

    def __post_init__(self) -> None:
        if self.min_head_points < 1:
            raise ValueError(f"min_head_points must be >= 1, got {self.min_head_points}")
        if not 0 <= self.min_inside_fraction <= 1 or not 0 < self.max_cost <= 1:
            raise ValueError("min_inside_fraction must be in [0, 1] and max_cost in (0, 1]")
        if self.box_margin < 0:
            raise ValueError(f"box_margin must be >= 0, got {self.box_margin}")


def face_body_cost(face: Face, person: Person, config: Optional[AssociationConfig] = None) -> float:
    """Association cost in [0, 1] of one pair, or +inf when the pair is not allowed."""
    cfg = config or AssociationConfig()
    body = person.body
    if body.layout != "blazepose33":
        raise ValueError(f"face association needs a blazepose33 body, got '{body.layout}'")
    idx = np.asarray(HEAD_BLAZEPOSE33)
    xy = body.xy[idx].astype(np.float64)
    ok = (body.score[idx] >= cfg.min_keypoint_score) & finite_rows(xy)
    if ok.sum() < cfg.min_head_points:
        return np.inf
    box = np.asarray(face.box, np.float64).reshape(4)
    size = max(box[2] - box[0], box[3] - box[1])
    if not np.isfinite(box).all() or size <= 0:
        return np.inf
    m = cfg.box_margin * size
    pts = xy[ok]
    inside = np.mean((pts[:, 0] >= box[0] - m) & (pts[:, 0] <= box[2] + m)
                     & (pts[:, 1] >= box[1] - m) & (pts[:, 1] <= box[3] + m))
    if inside < cfg.min_inside_fraction:
        return np.inf
    geometry = None
    mesh = face.mesh
    if mesh is not None and len(mesh) == 468:
        pairs = [(b, v) for b, v in BODY_TO_MESH
                 if body.score[b] >= cfg.min_keypoint_score and np.isfinite(mesh.xy[v]).all()
                 and mesh.score[v] > 0]
        if pairs:
            b_idx, v_idx = zip(*pairs)
            d = np.linalg.norm(body.xy[list(b_idx)] - mesh.xy[list(v_idx)], axis=1).mean()
            geometry = min(float(d) / size, 1.0)
    if geometry is None:
        centre = 0.5 * (box[:2] + box[2:])
        geometry = min(float(np.linalg.norm(pts.mean(axis=0) - centre)) / size, 1.0)
    return 0.5 * (1.0 - float(inside)) + 0.5 * geometry


def _mark(face: Face, person_index: int, track_id: int) -> None:
    face.person_index = person_index
    face.track_id = track_id if person_index >= 0 else 0
    face.associated = person_index >= 0


def associate_faces(persons: Sequence[Person], faces: Sequence[Face],
                    config: Optional[AssociationConfig] = None) -> List[Face]:
    """Attach faces to persons (Hungarian assignment on :func:`face_body_cost`).

    For each matched pair, sets ``person.face`` and the face's ``person_index`` (index into
    ``persons``), ``track_id`` and ``associated`` in place; persons without a match are left
    untouched. Returns the faces left without a body (marked ``associated=False``,
    ``track_id=0``, ``person_index=-1``).
    """
    cfg = config or AssociationConfig()
    faces = list(faces)
    if not faces:
        return []
    if not persons:
        for f in faces:
            _mark(f, -1, 0)
        return faces
    cost = np.array([[face_body_cost(f, p, cfg) for p in persons] for f in faces])
    finite = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(finite)
    matched = set()
    for r, c in zip(rows, cols):
        if finite[r, c] <= cfg.max_cost:
            _mark(faces[r], int(c), int(persons[c].track_id))
            persons[c].face = faces[r]
            matched.add(r)
    rest = [f for i, f in enumerate(faces) if i not in matched]
    for f in rest:
        _mark(f, -1, 0)
    return rest


def associate_frame(result: FrameResult, config: Optional[AssociationConfig] = None,
                    keep_existing: bool = True) -> FrameResult:
    """Associate ``result.faces_without_body`` with the persons of a frame, in place.

    With ``keep_existing`` faces already attached to a person (e.g. found in that person's head
    crop) stay where they are (their ids are synchronised) and only persons without a face take
    part; otherwise every face is detached and re-associated. A body-less face whose box overlaps
    an associated face by more than ``duplicate_iou`` is dropped as a duplicate.
    """
    cfg = config or AssociationConfig()
    if keep_existing:
        sync_face_track_ids(result.persons)
        candidates = [i for i, p in enumerate(result.persons) if p.face is None]
        free = list(result.faces_without_body)
    else:
        candidates = list(range(len(result.persons)))
        free = [p.face for p in result.persons if p.face is not None] + \
            list(result.faces_without_body)
        for p in result.persons:
            p.face = None
    sub = [result.persons[i] for i in candidates]
    rest = associate_faces(sub, free, cfg)
    for f in free:                        # indices into the sub-list -> into result.persons
        if f.associated:
            f.person_index = candidates[f.person_index]
    attached = [p.face.box for p in result.persons if p.face is not None]
    if attached and rest:
        iou = box_iou_matrix(np.stack([np.asarray(f.box) for f in rest]), np.stack(attached))
        rest = [f for f, row in zip(rest, iou) if row.max() <= cfg.duplicate_iou]
    result.faces_without_body = rest
    return result


def sync_face_track_ids(persons: Sequence[Person]) -> None:
    """Give each attached face its person's index and (current) track id."""
    for i, p in enumerate(persons):
        if p.face is not None:
            _mark(p.face, i, int(p.track_id))
