"""Face-to-body association."""
import numpy as np
import pytest

from pose_perception.core.association import (BODY_TO_MESH, AssociationConfig, associate_faces,
                                              associate_frame, face_body_cost,
                                              sync_face_track_ids)
from pose_perception.core.tracking import Tracker
from pose_perception.core.types import Face, FrameResult, Keypoints, Person
from synthetic_people import make_person, project


def face_for(person, with_mesh=True, shift_px=(0.0, 0.0), rng=None):
    """A face box (0.18 m x 0.24 m around the nose) and optionally mesh anchors, as a face
    detector + mesh model would give for this person's head."""
    nose3d = person.body.xyz[0].astype(np.float64)
    corners = np.array([nose3d + [-0.09, -0.14, 0], nose3d + [0.09, 0.10, 0]])
    c2 = project(corners) + np.asarray(shift_px)
    box = np.concatenate([c2[0], c2[1]])
    xy = np.tile(project(nose3d[None])[0] + shift_px, (468, 1))
    score = np.zeros(468)
    if with_mesh:
        for b, v in BODY_TO_MESH:
            xy[v] = person.body.xy[b] + shift_px
            if rng is not None:
                xy[v] += rng.normal(0, 1.0, 2)
            score[v] = 1.0
    return Face(Keypoints("face468", xy, score), box, 0.9)


@pytest.mark.parametrize("with_mesh", [True, False])
def test_faces_attach_to_their_bodies(with_mesh):
    people = [make_person(-0.6, 3.0), make_person(0.5, 3.5), make_person(1.5, 4.0)]
    for i, p in enumerate(people):
        p.track_id = 10 + i
    faces = [face_for(people[2], with_mesh), face_for(people[0], with_mesh)]
    stray = face_for(make_person(-2.0, 3.0), with_mesh)     # a face with no body (e.g. poster)
    rest = associate_faces(people, faces + [stray])
    assert rest == [stray]
    assert not stray.associated and stray.track_id == 0 and stray.person_index == -1
    assert faces[0].person_index == 2 and faces[0].track_id == 12 and faces[0].associated
    assert faces[1].person_index == 0 and faces[1].track_id == 10
    assert people[0].face is faces[1] and people[2].face is faces[0] and people[1].face is None


def test_close_heads_resolved_by_the_mesh_and_assignment():
    """Two heads 8 cm apart in the image, one person slightly behind: every (face, body) pair
    passes the gate on its own; the geometry cost and the assignment must sort it out."""
    rng = np.random.default_rng(0)
    a, b = make_person(0.0, 3.0), make_person(0.08 * 3.3 / 3.0, 3.3)
    a.track_id, b.track_id = 1, 2
    fa, fb = face_for(a, rng=rng), face_for(b, rng=rng)
    cost = np.array([[face_body_cost(f, p) for p in (a, b)] for f in (fa, fb)])
    assert (cost < AssociationConfig().max_cost).all()
    rest = associate_faces([a, b], [fb, fa])
    assert rest == [] and a.face is fa and b.face is fb
    assert fa.track_id == 1 and fb.track_id == 2


def test_head_not_visible_or_too_far():
    p = make_person(0.0, 3.0)
    f = face_for(p)
    p.body.score[:11] = 0.1                 # head keypoints not confident (seen from behind)
    assert face_body_cost(f, p) == np.inf
    assert associate_faces([p], [f]) == [f] and p.face is None
    q = make_person(0.0, 3.0)
    far = face_for(q, shift_px=(0.0, 60.0))  # a face box on the chest: not this head
    assert face_body_cost(far, q) == np.inf
    assert associate_faces([], [far]) == [far] and not far.associated
    with pytest.raises(ValueError):
        face_body_cost(far, Person(body=q.coco17(), box=q.box, score=0.9))


def test_gate_rejects_a_poorly_fitting_face():
    p = make_person(0.0, 3.0)
    off = face_for(p, shift_px=(12.0, 0.0))
    c = face_body_cost(off, p)
    assert 0.0 < c < 1.0
    assert associate_faces([p], [off], AssociationConfig(max_cost=c - 1e-6)) == [off]
    assert associate_faces([p], [off], AssociationConfig(max_cost=c + 1e-6)) == []


def test_associate_frame_keeps_existing_drops_duplicates_and_syncs_ids():
    a, b = make_person(-0.6, 3.0), make_person(0.8, 3.0)
    fa = face_for(a)
    a.face = fa                            # found in a's head crop by the pipeline
    dup = face_for(a, shift_px=(1.0, 1.0))  # the same face again from the face detector
    fb = face_for(b)
    res = FrameResult(persons=[a, b], faces_without_body=[dup, fb])
    Tracker().update(res.persons, 0.0)     # ids 1 and 2
    associate_frame(res)
    assert a.face is fa and fa.track_id == a.track_id == 1 and fa.person_index == 0
    assert b.face is fb and fb.track_id == 2 and fb.person_index == 1
    assert res.faces_without_body == []    # the duplicate is dropped
    assert set(map(id, res.faces)) == {id(fa), id(fb)}
    # re-association from scratch gives the same answer
    associate_frame(res, keep_existing=False)
    assert a.face is not None and b.face is fb and a.face.track_id == 1
    # ids assigned by the tracker after the faces were attached
    a.track_id, b.track_id = 5, 6
    sync_face_track_ids(res.persons)
    assert fb.track_id == 6 and a.face.track_id == 5
