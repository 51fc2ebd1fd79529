"""Multi-camera people fusion (core.people_fusion) on CMU Panoptic ground truth (calibrations +
3D people from shared/data/multiview_dev, projected into several cameras with depth noise,
dropouts and model-filled points) and on small hand-made cases."""
import numpy as np
import pytest

from pose_perception.core.people_fusion import (CameraPeople, FusionConfig, PeopleFusion,
                                                fuse_keypoints, _Obs)
from pose_perception.core.types import SOURCE_DEPTH, SOURCE_MODEL, Keypoints, Person

from multiview_people import (look_at, observe, panoptic_cameras, panoptic_people,
                              shelf_cameras, shelf_people)

KINECTS = ["50_01", "50_03", "50_05", "50_07", "50_09"]


def _person(points, sigma=0.02, source=SOURCE_DEPTH, velocity=None):
    kp = Keypoints("blazepose33", np.zeros((33, 2)), np.full(33, 0.9))
    kp.init_3d()
    pts = np.asarray(points, float)
    ok = np.isfinite(pts).all(axis=1)
    kp.xyz[ok] = pts[ok]
    kp.xyz_valid[:] = ok
    kp.xyz_sigma[ok] = sigma
    kp.xyz_source[ok] = source
    return Person(body=kp, box=np.array([0, 0, 10, 10.0]), score=0.9, velocity=velocity)


def _body(at):
    rng = np.random.default_rng(0)
    return np.asarray(at, float) + rng.uniform(-0.25, 0.25, (33, 3)) * [1, 1, 3]


def _scene(gt_frames, cams, frames, rng, motion=None):
    """Per time step: (gt people, [CameraPeople]) with person index labels in ``labels``."""
    out = []
    for k in range(frames):
        gts = gt_frames[k % len(gt_frames)]
        if motion is not None:
            gts = [g + motion(i, k) for i, g in enumerate(gts)]
        stamp = k / 30.0
        cam_frames = []
        for cam in cams:
            people, labels = [], []
            for i, g in enumerate(gts):
                p = observe(cam, g, rng)
                if p is not None:
                    people.append(p)
                    labels.append(i)
            cf = CameraPeople(cam.name, stamp, people)
            cf.labels = labels
            cam_frames.append(cf)
        out.append((gts, cam_frames))
    return out


def _labels_of(fused, cam_frames):
    """GT labels of each fused person's members (through object identity of the bodies)."""
    ids = {}
    for cf in cam_frames:
        for p, lab in zip(cf.people, cf.labels):
            ids[id(p)] = lab
    return ids


def _mean_err(kp, gt, mask=None):
    ok = kp.xyz_valid & np.isfinite(gt).all(axis=1)
    if mask is not None:
        ok &= mask
    return float(np.linalg.norm(kp.xyz[ok] - gt[ok], axis=1).mean()), ok


def _dataset(name):
    """(cameras, ground-truth frames) of a multiview_dev scene."""
    if name == "shelf":
        return shelf_cameras(), shelf_people()                     # 5 cameras, 2 actors
    return panoptic_cameras(name, KINECTS[:4]), panoptic_people(name)   # 4 Kinects, 3 people


@pytest.mark.parametrize("seq", ["160906_band1", "160906_band2", "shelf"])
def test_association_and_fused_error_on_multiview_ground_truth(seq):
    cams, gt_frames = _dataset(seq)
    rng = np.random.default_rng(1)
    fusion = PeopleFusion()
    # the people sway by a few cm per frame so the tracker works on moving people
    motion = lambda i, k: np.array([0.01 * k * (i - 1), 0.0, 0.005 * k])   # noqa: E731
    scene = _scene(gt_frames, cams, 30, rng, motion)
    switches, mixed, phantoms = 0, 0, 0
    owner = {}
    single_err = {c.name: [] for c in cams}
    fused_err = {c.name: [] for c in cams}
    for gts, cam_frames in scene:
        # remember which fused body came from which observation: rebuild per camera
        res = fusion.update(cam_frames, cam_frames[0].stamp_s)
        assert res.fresh_cameras == [c.name for c in cams]
        seen = {lab for cf in cam_frames for lab in cf.labels}
        phantoms += max(0, len(res.people) - len(seen))
        for fp in res.people:
            # the GT person closest to the fused centroid, and whether the members agree
            d = [np.nanmean(np.linalg.norm(fp.person.body.xyz - g, axis=1)) for g in gts]
            lab = int(np.nanargmin(d))
            if owner.get(lab) not in (None, fp.person.track_id):
                switches += 1
            owner[lab] = fp.person.track_id
            if min(d) > 0.15:
                mixed += 1
        for cf in cam_frames:
            for p, lab in zip(cf.people, cf.labels):
                e, mask = _mean_err(p.body, gts[lab])
                fp = min(res.people, key=lambda f: np.nanmean(
                    np.linalg.norm(f.person.body.xyz - gts[lab], axis=1)))
                ef, _ = _mean_err(fp.person.body, gts[lab], mask)
                single_err[cf.camera].append(e)
                fused_err[cf.camera].append(ef)
    print(f"\n{seq}: identity switches {switches}, mixed groups {mixed}, phantoms {phantoms}")
    for c in cams:
        print(f"  camera {c.name}: single {np.mean(single_err[c.name]) * 100:.1f} cm, fused "
              f"on its joints {np.mean(fused_err[c.name]) * 100:.1f} cm")
    assert switches == 0 and mixed == 0 and phantoms == 0
    best = min(single_err, key=lambda c: np.mean(single_err[c]))
    assert np.mean(fused_err[best]) < np.mean(single_err[best])
    for c in cams:
        assert np.mean(fused_err[c.name]) < np.mean(single_err[c.name])


def test_same_person_in_two_cameras_is_one_and_two_people_stay_two():
    a, b = _body([1.0, 0.0, 0.0]), _body([1.6, 0.0, 0.0])
    f = PeopleFusion()
    res = f.update([CameraPeople("cam1", 0.0, [_person(a), _person(b)]),
                    CameraPeople("cam2", 0.0, [_person(b + 0.01), _person(a - 0.01)])], 0.0)
    assert len(res.people) == 2
    assert all(sorted(p.cameras) == ["cam1", "cam2"] for p in res.people)
    assert sorted(p.person.track_id for p in res.people) == [1, 2]


def test_far_apart_people_are_not_merged():
    f = PeopleFusion()
    res = f.update([CameraPeople("cam1", 0.0, [_person(_body([0, 0, 0]))]),
                    CameraPeople("cam2", 0.0, [_person(_body([1.0, 0, 0]))])], 0.0)
    assert len(res.people) == 2 and all(len(p.cameras) == 1 for p in res.people)


def test_measured_points_win_over_model_filled():
    gt = _body([2.0, 0, 0])
    cfg = FusionConfig()
    measured = _Obs("a", _person(gt + 0.01, 0.02, SOURCE_DEPTH), 0.0, cfg)
    filled = _Obs("b", _person(gt + 0.3, 0.01, SOURCE_MODEL), 0.0, cfg)
    kp = fuse_keypoints([measured, filled], cfg)
    assert np.allclose(kp.xyz, gt + 0.01, atol=1e-5)
    assert (kp.xyz_source == SOURCE_DEPTH).all()
    # two measured points: inverse-variance weights (sigma 0.01 weighs 4x sigma 0.02)
    m2 = _Obs("c", _person(gt - 0.04, 0.01, SOURCE_DEPTH), 0.0, cfg)
    kp = fuse_keypoints([measured, m2], cfg)
    assert np.allclose(kp.xyz, gt + (0.01 * 1 + -0.04 * 4) / 5, atol=1e-5)
    assert np.allclose(kp.xyz_sigma, 1 / np.sqrt(1 / 0.02 ** 2 + 1 / 0.01 ** 2), atol=1e-6)


def test_time_alignment_uses_velocity_and_clock_offsets_are_reported():
    gt = _body([1.0, 0, 0])
    v = np.array([1.5, 0.0, 0.0])
    f = PeopleFusion()
    # cam2's frame is 0.1 s older: the person was 15 cm behind; prediction brings it together
    res = f.update([CameraPeople("cam1", 10.0, [_person(gt, velocity=v)]),
                    CameraPeople("cam2", 9.9, [_person(gt - 0.15 * np.array([1, 0, 0]),
                                                       velocity=v)])], 10.0)
    assert len(res.people) == 1 and res.stamp_s == 10.0
    assert np.allclose(res.people[0].person.body.xyz, gt, atol=1e-4)
    # a camera 2 s in the future (clock offset) and a stalled one are left out, with reasons
    res = f.update([CameraPeople("cam1", 10.1, [_person(gt)]),
                    CameraPeople("ahead", 12.1, [_person(gt)]),
                    CameraPeople("stalled", 8.0, [_person(gt)])], 10.1)
    assert res.fresh_cameras == ["cam1"] and len(res.people) == 1
    assert "future" in res.camera_status["ahead"] and "stale" in res.camera_status["stalled"]


def test_box_only_people_fuse_by_centroid():
    f = PeopleFusion()
    boxes = []
    for cam, c in (("cam1", [2.0, 0, 0]), ("cam2", [2.05, 0.02, 0])):
        kp = Keypoints("blazepose33", np.full((33, 2), np.nan), np.zeros(33))
        boxes.append(CameraPeople(cam, 0.0, [Person(body=kp, box=np.array([0, 0, 5, 5.0]),
                                                    score=0.6, found_by=1,
                                                    centroid=np.array(c), centroid_sigma=0.05)]))
    res = f.update(boxes, 0.0)
    assert len(res.people) == 1 and res.people[0].person.found_by == 1
    assert np.allclose(res.people[0].person.centroid, [2.025, 0.01, 0])


def test_id_kept_when_walking_from_one_view_into_another():
    # two cameras side by side, 44 degrees apart (56 degree field of view each): a person walks
    # from the left camera's view through a small overlap into the right one's
    left = look_at("left", [0, 0, 1.2], [3.0, 1.2, 1.2])
    right = look_at("right", [0, 0, 1.2], [3.0, -1.2, 1.2])
    base = panoptic_people("160906_band1")[0][0]
    body = base[:, [0, 2, 1]] * [1, 1, -1]                 # Panoptic y-down -> z-up
    body = body - np.nanmean(body, axis=0) + [0, 0, 1.0]
    rng = np.random.default_rng(3)
    f = PeopleFusion()
    ids, seen_by = set(), []
    for k in range(120):                                    # 4 s at 30 Hz, y from +3 to -3
        pos = np.array([3.0, 3.0 - 6.0 * k / 119, 0.0])
        stamp = k / 30.0
        frames = []
        for cam in (left, right):
            p = observe(cam, body + pos, rng)
            frames.append(CameraPeople(cam.name, stamp, [] if p is None else [p]))
        res = f.update(frames, stamp)
        assert len(res.people) <= 1
        for fp in res.people:
            ids.add(fp.person.track_id)
            seen_by.append(tuple(sorted(fp.cameras)))
    assert ("left",) in seen_by and ("right",) in seen_by and ("left", "right") in seen_by
    assert ids == {1}


def test_masked_median_matches_numpy():
    from pose_perception.core.people_fusion import _masked_median
    rng = np.random.default_rng(0)
    v, m = rng.random((40, 33)), rng.random((40, 33)) < 0.4
    m[:, 5] = True
    assert np.allclose(_masked_median(v, m), [np.median(r[k]) for r, k in zip(v, m)])


def test_bench_fusion_command_runs(capsys):
    from pose_perception.apps.bench_fusion import main
    assert main(["--frames", "30"]) == 0
    out = capsys.readouterr().out
    assert "fusion core, 4 cameras x 3 people" in out and "fused people per frame: 3.00" in out


def test_a_camera_with_a_wrong_transform_shows_in_its_residual():
    rng = np.random.default_rng(5)
    people = [_body([2.0, 0, 0]), _body([2.0, 1.5, 0])]

    def seen(offset):
        return [_person(p + offset + rng.normal(0, 0.01, (33, 3))) for p in people]
    f = PeopleFusion()
    res = f.update([CameraPeople("a", 0.0, seen(0.0)), CameraPeople("b", 0.0, seen(0.0)),
                    CameraPeople("c", 0.0, seen(np.array([0.25, 0, 0])))], 0.0)
    assert len(res.people) == 2                       # 25 cm off: still one person each
    r = res.camera_residual_m
    assert r["a"] < 0.12 and r["b"] < 0.12 and r["c"] > 0.12
    assert r["c"] > 1.8 * max(r["a"], r["b"])


def test_ids_stay_when_cameras_stamps_nearly_coincide():
    """Fusion on each camera's arrival: fused stamps alternate between two cameras' stamps
    0.1 ms apart; centimetre noise over such a gap must not read as a huge velocity."""
    rng = np.random.default_rng(2)
    gt = _body([2.0, 0, 0])
    f = PeopleFusion()
    frames = {}
    ids = set()
    for k in range(60):
        for cam, offset in (("a", 0.0), ("b", 1e-4)):
            frames[cam] = CameraPeople(cam, k / 30 + offset,
                                       [_person(gt + rng.normal(0, 0.01, (33, 3)))])
            res = f.update(list(frames.values()), k / 30 + offset)
            ids |= {p.person.track_id for p in res.people}
            assert len(res.people) == 1
    assert ids == {1}


def test_people_without_3d_are_left_out_not_phantoms():
    """A camera's frame processed without depth (2D only): its people cannot be placed in the
    fusion frame; they are counted, not fused as new people with new ids at every frame."""
    a = _body([2.0, 0.0, 0.0])
    f = PeopleFusion()
    for k in range(3):
        flat = Keypoints("blazepose33", np.full((33, 2), 50.0), np.full(33, 0.9))
        flat.init_3d()                                 # 3D fields present, none valid
        no_xyz = Keypoints("blazepose33", np.full((33, 2), 60.0), np.full(33, 0.9))
        res = f.update([CameraPeople("cam1", k * 0.1, [_person(a)]),
                        CameraPeople("cam2", k * 0.1, [
                            Person(body=flat, box=np.array([0, 0, 5, 5.0]), score=0.9),
                            Person(body=no_xyz, box=np.array([0, 0, 5, 5.0]), score=0.9)])],
                       k * 0.1)
        assert len(res.people) == 1 and res.people[0].cameras == ["cam1"]
        assert res.people[0].person.track_id == 1
        assert res.camera_no_3d == {"cam2": 2} and res.camera_status["cam2"] == "used"


def test_has_face_when_any_camera_found_the_face():
    from pose_perception.core.types import Face
    a, b = _body([1.0, 0.0, 0.0]), _body([1.6, 0.0, 0.0])
    face = Face(mesh=Keypoints("face468", np.zeros((468, 2)), np.ones(468)),
                box=np.array([0, 0, 5, 5.0]), score=0.9)
    pa1, pb1, pa2, pb2 = _person(a), _person(b), _person(a + 0.01), _person(b - 0.01)
    pa2.face = face                     # only cam2 saw person a's face; nobody saw b's
    res = PeopleFusion().update([CameraPeople("cam1", 0.0, [pa1, pb1]),
                                 CameraPeople("cam2", 0.0, [pb2, pa2])], 0.0)
    by_x = sorted(res.people, key=lambda p: p.person.centroid[0])
    assert [p.has_face for p in by_x] == [True, False]
    assert sorted(c for c, _ in by_x[0].sources) == ["cam1", "cam2"]
    assert {id(p) for _, p in by_x[0].sources} == {id(pa1), id(pa2)}
