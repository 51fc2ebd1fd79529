"""Tracker: id continuity on synthetic sequences (crossing, occlusion, re-entry, approach)."""
import numpy as np
import pytest

from pose_perception.core.geometry import box_iou_matrix
from pose_perception.core.tracking import Tracker, TrackerConfig, torso_centroid
from synthetic_people import make_person

FPS = 30.0


def run(tracker, frames, t0=0.0, shuffle_rng=None):
    """frames: list of {identity: Person}; returns list of {identity: track_id} per frame."""
    out = []
    for i, frame in enumerate(frames):
        names = list(frame)
        if shuffle_rng is not None:
            shuffle_rng.shuffle(names)
        persons = [frame[n] for n in names]
        res = tracker.update(persons, t0 + i / FPS)
        assert res == persons   # in place, input order
        out.append({n: p.track_id for n, p in zip(names, persons)})
    return out


def ids_of(seq, name):
    return [f[name] for f in seq if name in f]


def test_torso_centroid():
    p = make_person(0.5, 3.0)
    c = torso_centroid(p.body)
    np.testing.assert_allclose(c, [0.5, -0.25, 3.0], atol=1e-6)
    p.body.xyz_valid[:] = False
    assert torso_centroid(p.body) is None


@pytest.mark.parametrize("with_3d", [True, False])
def test_two_people_crossing(with_3d):
    """A walks right at 3.0 m, B walks left at 3.2 m, both at 2 m/s, seen at 15 fps: their
    boxes overlap (IoU > 0.5) mid-way. (Without the constant-velocity prediction this sequence
    breaks the tracks: checked when the tests were written, max_prediction_s=0 fails it.)"""
    rng = np.random.default_rng(1)
    fps, n = 15.0, 22                        # 1.4 s, 2.1 m/s
    tracker = Tracker()
    ida, idb, overlap = [], [], 0.0
    for i in range(n):
        s = i / (n - 1)
        a = make_person(-1.5 + 3.0 * s, 3.0, with_3d=with_3d, noise_px=2.0, noise_m=0.03, rng=rng)
        b = make_person((1.5 - 3.0 * s) * 3.2 / 3.0, 3.2, with_3d=with_3d, noise_px=2.0,
                        noise_m=0.03, rng=rng)
        overlap = max(overlap, box_iou_matrix(a.box, b.box)[0, 0])
        frame = [a, b]
        rng.shuffle(frame)
        tracker.update(frame, i / fps)
        ida.append(a.track_id)
        idb.append(b.track_id)
    assert overlap > 0.5   # they really cross in the image
    assert len(set(ida)) == 1 and len(set(idb)) == 1, (ida, idb)
    assert ida[0] != idb[0] and ida[0] > 0 and idb[0] > 0


@pytest.mark.parametrize("gap_s,same", [(0.5, True), (1.5, False)])
def test_occlusion_shorter_and_longer_than_max_age(gap_s, same):
    """A walks at 1 m/s and is hidden for gap_s; B stays visible all the time."""
    tracker = Tracker(TrackerConfig(max_age_s=1.0))
    frames = []
    n = int((1.0 + gap_s + 1.0) * FPS)
    for i in range(n):
        t = i / FPS
        frame = {"B": make_person(1.0, 4.0)}
        if not (1.0 <= t < 1.0 + gap_s):
            frame["A"] = make_person(-1.5 + 1.0 * t, 3.0)
        frames.append(frame)
    seq = run(tracker, frames)
    ida = ids_of(seq, "A")
    before, after = ida[0], ida[-1]
    assert len(set(ids_of(seq, "B"))) == 1
    assert len(set(ida[:int(FPS)])) == 1 and len(set(ida[-int(FPS):])) == 1
    if same:
        assert after == before
    else:
        assert after != before and after > max(before, seq[0]["B"])   # never reused


def test_reentry_gets_a_new_id_and_ids_are_never_reused():
    tracker = Tracker(TrackerConfig(max_age_s=0.5))
    seen = []
    t = 0.0
    for visit in range(3):
        ids = []
        for i in range(15):
            p = make_person(0.0 + 0.01 * i, 3.0)
            tracker.update([p], t)
            ids.append(p.track_id)
            t += 1 / FPS
        for _ in range(30):                 # 1 s away (> max_age_s)
            assert tracker.update([], t) == []
            t += 1 / FPS
        assert len(set(ids)) == 1
        seen.append(ids[0])
    assert seen == sorted(seen) and len(set(seen)) == 3


@pytest.mark.parametrize("with_3d", [True, False])
def test_walking_toward_the_camera(with_3d):
    """From 6 m to 1.2 m at 1.6 m/s: the box grows about five-fold; the id must not change."""
    rng = np.random.default_rng(2)
    tracker = Tracker()
    z, ids, t = 6.0, [], 0.0
    while z > 1.2:
        p = make_person(0.3, z, with_3d=with_3d, noise_px=1.5, noise_m=0.02, rng=rng)
        tracker.update([p], t)
        ids.append(p.track_id)
        z -= 1.6 / FPS
        t += 1 / FPS
    assert len(ids) > 80 and set(ids) == {1}


def test_min_hits_confirmation_and_false_positive():
    tracker = Tracker(TrackerConfig(min_hits=3))
    ids, ghost_ids = [], []
    for i in range(10):
        frame = [make_person(0.0, 3.0)]
        if i == 4:   # one-frame false positive far away
            ghost = make_person(2.0, 5.0)
            frame.append(ghost)
        tracker.update(frame, i / FPS)
        ids.append(frame[0].track_id)
        if i == 4:
            ghost_ids.append(ghost.track_id)
    assert ids[:2] == [0, 0] and set(ids[2:]) == {1}
    assert ghost_ids == [0]
    late = make_person(-2.0, 4.0)
    for i in range(10, 13):
        tracker.update([make_person(0.0, 3.0), late], i / FPS)
    assert late.track_id == 2      # the ghost consumed no id

    quiet = Tracker(TrackerConfig(min_hits=2, output_tentative=False))
    assert quiet.update([make_person(0, 3)], 0.0) == []
    assert [p.track_id for p in quiet.update([make_person(0, 3)], 0.1)] == [1]


def test_gating_rejects_a_far_detection():
    """A vanishes while B appears across the image in the same frame: B must get a new id."""
    tracker = Tracker(TrackerConfig(max_age_s=1.0))
    a = make_person(-1.5, 3.0)
    tracker.update([a], 0.0)
    b = make_person(1.5, 3.0)
    tracker.update([b], 1 / FPS)
    assert a.track_id == 1 and b.track_id == 2
    # a detection at the same image place but 2 m deeper is rejected by the 3D gate
    c = make_person(-1.5 * 5.0 / 3.0, 5.0)
    tracker2 = Tracker()
    tracker2.update([make_person(-1.5, 3.0)], 0.0)
    tracker2.update([c], 1 / FPS)
    assert c.track_id == 2


def test_time_handling():
    tracker = Tracker(TrackerConfig(max_age_s=1.0))
    p = make_person(0.0, 3.0)
    tracker.update([p], 10.0)
    dup = make_person(0.0, 3.0)
    tracker.update([dup], 10.0)                 # duplicated stamp: same person
    assert dup.track_id == p.track_id == 1
    later = make_person(0.0, 3.0)
    tracker.update([later], 11.5)               # jump > max_age_s retires everyone
    assert later.track_id == 2
    back = make_person(0.0, 3.0)
    tracker.update([back], 5.0)                 # bag loop: reset, ids keep increasing
    assert back.track_id == 3
    nxt = make_person(0.01, 3.0)
    tracker.update([nxt], 5.0 + 1 / FPS)
    assert nxt.track_id == 3
    assert len(tracker.tracks) == 1 and tracker.tracks[0].track_id == 3
    tracker.reset()
    assert tracker.tracks == []
    with pytest.raises(ValueError):
        tracker.update([nxt], float("nan"))
    with pytest.raises(ValueError):
        TrackerConfig(max_cost=0.0)


def test_prediction_follows_a_fast_mover_through_a_short_occlusion():
    """2 m/s lateral at 2.5 m: in 0.3 s the person moves ~1.5 box widths; without prediction the
    boxes would not even overlap."""
    tracker = Tracker(TrackerConfig(max_age_s=1.0))
    ids = []
    for i in range(40):
        t = i / FPS
        if 0.5 <= t < 0.8:
            tracker.update([], t)
            continue
        p = make_person(-1.5 + 2.0 * t, 2.5, with_3d=False)
        tracker.update([p], t)
        ids.append(p.track_id)
    assert set(ids) == {1}


def _face(cx, cy, z=None, size=60.0, n=468, seed=0):
    """A face mesh around (cx, cy) px; with z, every point at that depth."""
    from pose_perception.core.types import Face, Keypoints
    rng = np.random.default_rng(seed)
    xy = np.stack([cx + rng.uniform(-0.5, 0.5, n) * size, cy + rng.uniform(-0.6, 0.6, n) * size], 1)
    mesh = Keypoints("face468", xy, np.full(n, 0.95))
    if z is not None:
        mesh.init_3d()
        mesh.xyz[:] = [(cx - 320) / 500 * z, (cy - 240) / 500 * z, z]
        mesh.xyz_valid[:] = True
    box = np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])
    return Face(mesh=mesh, box=box, score=0.95)


def test_faces_without_a_body_get_their_own_ids_from_the_people_id_space():
    """Two body-less faces moving past each other keep their ids; a person tracked beside them
    draws from the same counter, so no face id equals a person id; a face that reappears after
    max_age_s is a new face."""
    import itertools
    ids = itertools.count(1)
    people, faces = Tracker(TrackerConfig(), ids), Tracker(TrackerConfig(), ids)
    a_ids, b_ids, p_ids = [], [], []
    for i in range(20):
        t = i / FPS
        a, b = _face(200 + 6 * i, 200, 1.0, seed=i), _face(400 - 6 * i, 210, 1.3, seed=50 + i)
        person = make_person(0.2, 3.0)
        people.update([person], t)
        assert faces.update_faces([b, a], t) == [b, a]
        a_ids.append(a.track_id)
        b_ids.append(b.track_id)
        p_ids.append(person.track_id)
    assert len(set(a_ids[1:])) == 1 and len(set(b_ids[1:])) == 1 and a_ids[-1] != b_ids[-1]
    assert a_ids[-1] > 0 and b_ids[-1] > 0 and p_ids[-1] > 0
    assert p_ids[-1] not in (a_ids[-1], b_ids[-1])
    c = _face(300, 200, 1.0)
    faces.update_faces([c], 20 / FPS + 5.0)                # long after: a new track
    faces.update_faces([c], 20 / FPS + 5.0 + 1 / FPS)
    assert c.track_id > max(a_ids[-1], b_ids[-1], p_ids[-1])


def test_perception_tracks_faces_without_a_body():
    from pose_perception.core.perception import Perception, PerceptionConfig
    from pose_perception.core.types import FrameResult

    class OnlyFaces:
        provider = "fake"

        def __init__(self):
            self.i = 0

        def process(self, rgb, stamp_s=None):
            self.i += 1
            return FrameResult(faces_without_body=[_face(300 + 3 * self.i, 240, seed=self.i)])

        def reset(self):
            pass

    per = Perception(PerceptionConfig(), keypoints=OnlyFaces())
    rgb = np.zeros((480, 640, 3), np.uint8)
    got = [per.process(rgb, i / FPS).faces_without_body[0].track_id for i in range(6)]
    assert got[-1] > 0 and len(set(got[2:])) == 1, got
    r = per.process(rgb, 6 / FPS)
    assert not r.faces_without_body[0].associated
