"""Lifting on synthetic RGB-D of known geometry: a BlazePose-33 person made of capsules (rendered
z-buffered like a depth camera sees it) in front of a wall, seen by a distorted camera."""
import numpy as np
import pytest

from pose_perception.core.camera import CameraModel
from pose_perception.apps.eval_lift3d import add_sensor_effects, render_depth
from pose_perception.core.lifting import Lifter, LiftingConfig
from pose_perception.core.types import (SOURCE_DEPTH, SOURCE_MODEL, SOURCE_NONE, Face,
                                        FrameResult, Hand, Keypoints, Person)

CAM = CameraModel(640, 480, [[540.0, 0, 321.0], [0, 540.0, 238.0], [0, 0, 1]],
                  [0.06, -0.12, 0.001, -0.001, 0.03], "plumb_bob")
HEAD_C, HEAD_R = np.array([0.0, -0.72, 0.0]), 0.09
BODY = [2, 3, 5, 6] + list(range(11, 33))          # not the face points


def _on_head(x, y):
    return HEAD_C + [x, y, -np.sqrt(HEAD_R ** 2 - x ** 2 - y ** 2)]


def person_joints(z0=2.5, x0=0.0):
    """BlazePose-33 joint centres (m) of a person facing the camera, hips 5 cm below the axis."""
    j = np.zeros((33, 3))
    j[0] = _on_head(0.0, 0.02)
    for i, x in zip((1, 2, 3), (0.015, 0.03, 0.045)):
        j[i] = _on_head(x, -0.01)
        j[i + 3] = _on_head(-x, -0.01)
    j[7], j[8] = HEAD_C + [0.085, 0, 0], HEAD_C + [-0.085, 0, 0]
    j[9], j[10] = _on_head(0.025, 0.06), _on_head(-0.025, 0.06)
    for s in (1, -1):  # s = +1: the person's left (image right when facing the camera)
        o = 0 if s == 1 else 1
        j[11 + o] = [0.18 * s, -0.48, 0.0]
        j[13 + o] = [0.23 * s, -0.20, 0.03]
        j[15 + o] = [0.25 * s, 0.05, -0.04]
        j[17 + o] = [0.27 * s, 0.12, -0.05]
        j[19 + o] = [0.25 * s, 0.14, -0.07]
        j[21 + o] = [0.22 * s, 0.10, -0.08]
        j[23 + o] = [0.10 * s, 0.0, 0.0]
        j[25 + o] = [0.11 * s, 0.43, -0.03]
        j[27 + o] = [0.12 * s, 0.85, 0.02]
        j[29 + o] = [0.12 * s, 0.90, 0.07]
        j[31 + o] = [0.13 * s, 0.92, -0.12]
    return j + [x0, 0.05, z0]


def body_capsules(j):
    mid_s, mid_h = (j[11] + j[12]) / 2, (j[23] + j[24]) / 2
    head = (j[7] + j[8]) / 2
    caps = [(mid_s, mid_h, 0.11), (j[11], j[12], 0.06), (j[23], j[24], 0.09),
            (j[11], j[23], 0.08), (j[12], j[24], 0.08), (mid_s, head, 0.05),
            (head, head, HEAD_R)]
    for o in (0, 1):
        caps += [(j[11 + o], j[13 + o], 0.045), (j[13 + o], j[15 + o], 0.035),
                 (j[15 + o], j[19 + o], 0.025), (j[15 + o], j[17 + o], 0.02),
                 (j[15 + o], j[21 + o], 0.02), (j[23 + o], j[25 + o], 0.065),
                 (j[25 + o], j[27 + o], 0.042), (j[27 + o], j[31 + o], 0.03),
                 (j[27 + o], j[29 + o], 0.03)]
    return caps


def scene(z0=2.5, wall_gap=1.5, noise=0.0015, seed=0, joints=None, cam=CAM, extra=()):
    j = person_joints(z0) if joints is None else joints
    ideal = render_depth(cam, body_capsules(j) + list(extra),
                         None if wall_gap is None else z0 + wall_gap)
    depth = ideal if noise is None else add_sensor_effects(ideal, np.random.default_rng(seed),
                                                           noise)
    return j, depth


def keypoints(j, score=1.0):
    return Keypoints("blazepose33", CAM.project(j), np.full(33, score))


def box_height(kps):
    return float(np.ptp(kps.xy[:, 1]))


def errors(kps, j):
    return np.linalg.norm(kps.xyz.astype(np.float64) - j, axis=1)


@pytest.fixture(scope="module")
def base():
    return scene()


def test_joint_centres_from_surface_depth(base):
    j, depth = base
    kps = keypoints(j)
    stats = Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    assert np.all(kps.xyz_valid[BODY]), np.flatnonzero(~kps.xyz_valid)
    e = errors(kps, j)
    assert e[BODY].max() < 0.035, np.round(e, 3)
    assert np.median(e[BODY]) < 0.02
    assert np.all(kps.xyz_source[kps.xyz_valid] != SOURCE_NONE)
    assert stats.z_ref == pytest.approx(2.5 - 0.11, abs=0.05)   # the trunk's front surface
    # the surface -> joint-centre correction matters (hips are 9 cm inside)
    flat = keypoints(j)
    Lifter(LiftingConfig(surface_offset_scale=0.0)).lift_keypoints(flat, depth, CAM,
                                                                   box_height(flat))
    hips = [23, 24]
    assert errors(flat, j)[hips].min() > 0.06 and e[hips].max() < 0.03


def test_uncertainty(base):
    j, depth = base
    kps = keypoints(j)
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    v = kps.xyz_valid
    assert np.all(np.isfinite(kps.xyz_sigma[v])) and np.all(kps.xyz_sigma[v] > 0)
    assert np.all(np.isnan(kps.xyz_sigma[~v]))
    # most errors within 3 sigma
    assert np.mean(errors(kps, j)[v] < 3 * kps.xyz_sigma[v]) > 0.9
    # noisier depth and a farther person mean larger sigmas
    j2, noisy = scene(noise=0.006, seed=1)
    k2 = keypoints(j2)
    Lifter().lift_keypoints(k2, noisy, CAM, box_height(k2))
    j3, far = scene(z0=4.5)
    k3 = keypoints(j3)
    Lifter().lift_keypoints(k3, far, CAM, box_height(k3))
    s1 = np.nanmedian(kps.xyz_sigma[BODY])
    assert np.nanmedian(k2.xyz_sigma[BODY]) > s1 and np.nanmedian(k3.xyz_sigma[BODY]) > s1


@pytest.mark.parametrize("wall_gap", [0.5, 3.0])
def test_limb_at_a_wall_keeps_the_limb_depth(wall_gap):
    """The left forearm's keypoints shifted to the arm's silhouette edge: half of each window
    sees the wall (0.5 m behind: inside the person's depth band; 3 m: outside)."""
    j, depth = scene(wall_gap=wall_gap)
    kps = keypoints(j)
    px_per_m = CAM.fx / j[15, 2]
    kps.xy[[15, 13], 0] += 0.035 * px_per_m          # one forearm radius outward
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    for i in (13, 15):
        assert kps.xyz_valid[i]
        assert abs(kps.xyz[i, 2] - j[i, 2]) < 0.05, (i, kps.xyz[i, 2], j[i, 2])


def test_keypoint_on_the_background_is_invalid():
    j, depth = scene(wall_gap=0.5)
    kps = keypoints(j)
    kps.xy[15] += (60.0, 0.0)                         # left wrist far off the arm, on the wall
    stats = Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    assert not kps.xyz_valid[15] and np.all(np.isnan(kps.xyz[15]))
    assert kps.xyz_source[15] == SOURCE_NONE and stats.n_rejected >= 1
    j, depth = scene(wall_gap=3.0)                    # a far wall: outside the person's band
    kps = keypoints(j)
    kps.xy[15] += (60.0, 0.0)
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    assert not kps.xyz_valid[15]
    assert np.all(kps.xyz_valid[[11, 13, 23, 25]])


def test_invalid_depth_never_raises(base):
    j, depth = base
    kps = keypoints(j)
    lifter = Lifter()
    stats = lifter.lift_keypoints(kps, np.full_like(depth, np.nan), CAM, box_height(kps))
    assert not kps.xyz_valid.any() and np.all(np.isnan(kps.xyz)) and np.isnan(stats.z_ref)
    assert np.all(kps.xyz_source == SOURCE_NONE)
    lifter.lift_keypoints(kps, np.zeros_like(depth), CAM)
    assert not kps.xyz_valid.any()
    # inf, negative and zero readings are ignored like NaN
    bad = depth.copy()
    rng = np.random.default_rng(3)
    for v in (np.inf, -np.inf, -2.0, 0.0):
        bad[rng.random(bad.shape) < 0.05] = v
    nanned = np.where(np.isfinite(bad) & (bad > 0), bad, np.nan).astype(np.float32)
    a, b = keypoints(j), keypoints(j)
    lifter.lift_keypoints(a, bad, CAM, box_height(a))
    lifter.lift_keypoints(b, nanned, CAM, box_height(b))
    np.testing.assert_array_equal(a.xyz_valid, b.xyz_valid)
    np.testing.assert_allclose(a.xyz, b.xyz, atol=1e-6)
    # keypoints outside the image or NaN
    kps = keypoints(j)
    kps.xy[15] = (-50.0, 100.0)
    kps.xy[16] = (np.nan, np.nan)
    kps.xy[27] = (300.0, 5000.0)
    lifter.lift_keypoints(kps, depth, CAM, box_height(kps))
    assert not kps.xyz_valid[[15, 16, 27]].any() and kps.xyz_valid[[11, 12, 23, 24]].all()
    with pytest.raises(ValueError, match="metres"):
        lifter.lift_keypoints(kps, np.zeros(depth.shape, np.uint16), CAM)


def test_model_fill_for_joints_without_depth(base):
    j, depth = base
    d = depth.copy()
    d[int(CAM.project(j[[25]])[0, 1]) - 10:, :] = np.nan   # no depth from the knees down
    c, s = np.cos(0.2), np.sin(0.2)
    Ry = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])      # the model's own orientation
    hip = (j[23] + j[24]) / 2
    world = (j - hip) @ Ry.T
    kps = keypoints(j)
    stats = Lifter().lift_keypoints(kps, d, CAM, box_height(kps), world=world)
    legs = [25, 26, 27, 28, 29, 30, 31, 32]
    assert np.all(kps.xyz_source[legs] == SOURCE_MODEL) and np.all(kps.xyz_valid[legs])
    assert np.all(kps.xyz_source[[11, 12, 23, 24]] == SOURCE_DEPTH)
    assert errors(kps, j)[legs].max() < 0.04
    assert stats.n_model >= len(legs) and stats.model_fit_rms < 0.03
    # the filled points carry a larger uncertainty than measured ones
    assert kps.xyz_sigma[legs].min() > np.median(kps.xyz_sigma[[11, 12, 23, 24]])
    # without the model they stay invalid, nothing is guessed
    k2 = keypoints(j)
    Lifter().lift_keypoints(k2, d, CAM, box_height(k2))
    assert not k2.xyz_valid[legs].any()
    k3 = keypoints(j)
    Lifter(LiftingConfig(model_fill=False)).lift_keypoints(k3, d, CAM, box_height(k3),
                                                           world=world)
    assert not k3.xyz_valid[legs].any()


def test_hand_behind_the_back_is_not_put_on_the_back():
    j = person_joints()
    # the right arm (same bone lengths as the left) reaches behind the back: elbow beside and
    # behind the trunk, wrist 0.17 m behind the hips' plane; its pixel shows the trunk's front
    l1, l2 = np.linalg.norm(j[13] - j[11]), np.linalg.norm(j[15] - j[13])
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    j[14] = j[12] + l1 * unit(np.array([-0.12, 0.24, 0.12]))
    j[16] = j[14] + l2 * unit(j[24] + [0.02, -0.08, 0.17] - j[14])
    j[[18, 20, 22]] = j[16] + [0.02, 0.05, 0.01]
    j, depth = scene(joints=j)
    kps = keypoints(j)
    stats = Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    assert stats.n_occluded >= 1
    assert kps.xyz_valid[16] and kps.xyz_source[16] == SOURCE_MODEL
    # the bone nearly crosses the ray: the depth is known to a few cm, and sigma says so
    assert errors(kps, j)[16] < 0.08 and errors(kps, j)[16] < 2 * kps.xyz_sigma[16]
    naive = keypoints(j)
    Lifter(LiftingConfig(occlusion_repair=False)).lift_keypoints(naive, depth, CAM,
                                                                 box_height(naive))
    assert errors(naive, j)[16] > 0.15       # it would sit on the back's surface


def test_low_score_joint_in_front_is_still_measured(base):
    """A low-score joint whose depth is consistent with its bone keeps the measurement."""
    j, depth = base
    kps = keypoints(j)
    kps.score[[15, 17, 19, 21]] = 0.2
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    assert kps.xyz_valid[15] and kps.xyz_source[15] == SOURCE_DEPTH
    assert errors(kps, j)[15] < 0.035


def test_registered_depth_at_another_resolution(base):
    j, _ = base
    small = CAM.scaled(320, 240)
    _, depth = scene(cam=small, noise=None)
    kps = keypoints(j)
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))   # colour model scaled itself
    assert np.all(kps.xyz_valid[BODY])
    assert errors(kps, j)[BODY].max() < 0.04
    k2 = keypoints(j)
    Lifter().lift_keypoints(k2, depth, CAM, box_height(k2), depth_camera=small)
    np.testing.assert_allclose(k2.xyz, kps.xyz, atol=1e-6)


def test_lift_frame_persons_hands_faces(base):
    j, depth = base
    body = keypoints(j)
    box = np.array([*body.xy.min(axis=0), *body.xy.max(axis=0)])
    # a hand: 21 points along the left hand's capsule (wrist -> index)
    t = np.linspace(0, 1, 21)[:, None]
    hand_xyz = j[15] + t * (j[19] - j[15])
    hand = Hand(Keypoints("hand21", CAM.project(hand_xyz), np.ones(21)), "left", 0.9)
    # a face mesh: points on the head sphere's front
    rng = np.random.default_rng(0)
    ang = rng.uniform(-0.6, 0.6, (468, 2))
    sphere = np.c_[np.sin(ang[:, 0]), np.sin(ang[:, 1]), -np.cos(ang[:, 0]) * np.cos(ang[:, 1])]
    mesh_xyz = HEAD_C + [0, 0.05, 2.5] + HEAD_R * sphere
    face_mesh = Keypoints("face468", CAM.project(mesh_xyz), np.ones(468))
    fbox = np.array([*face_mesh.xy.min(axis=0), *face_mesh.xy.max(axis=0)])
    person = Person(body, box, 0.9, hands=[hand])
    lone_face = Face(face_mesh.copy(), fbox, 0.9)
    result = FrameResult(persons=[person], faces_without_body=[lone_face])
    out = Lifter().lift_frame(result, depth, CAM)
    assert out is result
    torso = (j[11] + j[12] + j[23] + j[24]) / 4
    assert np.linalg.norm(person.centroid - torso) < 0.03
    assert hand.keypoints.xyz_valid.mean() > 0.9
    assert np.nanmax(np.abs(hand.keypoints.xyz[:, 2] - hand_xyz[:, 2])) < 0.05
    fm = lone_face.mesh
    assert fm.xyz_valid.mean() > 0.9
    assert np.nanmedian(np.abs(fm.xyz[:, 2] - mesh_xyz[:, 2])) < 0.01
    # a depth image whose size differs from its CameraInfo: used with scaled intrinsics
    res2 = FrameResult(persons=[Person(keypoints(j), box, 0.9)])
    Lifter().lift_frame(res2, depth, CAM, depth_camera=CAM.scaled(320, 240))
    assert res2.warnings and "does not match" in res2.warnings[0]
    assert res2.persons[0].body.xyz_valid[BODY].all()


def test_object_in_front_of_a_joint():
    """A ball 0.6 m in front of the left knee (inside the person's depth band): the knee must
    not take the ball's depth; with the model's 3D it is filled, without it is invalid."""
    j = person_joints()
    c = j[25] * (j[25, 2] - 0.6) / j[25, 2]          # on the knee's viewing ray
    j, depth = scene(joints=j, extra=[(c, c, 0.05)])
    kps = keypoints(j)
    stats = Lifter().lift_keypoints(kps, depth, CAM, box_height(kps))
    assert not kps.xyz_valid[25] and stats.n_rejected >= 1
    assert kps.xyz_valid[[23, 27]].all()
    hip = (j[23] + j[24]) / 2
    kps = keypoints(j)
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps), world=j - hip)
    assert kps.xyz_valid[25] and kps.xyz_source[25] == SOURCE_MODEL
    assert errors(kps, j)[25] < 0.04


def test_face_points_of_a_person_facing_away_are_not_measured(base):
    """Seen from behind, the nose's pixel shows the back of the head: with the model's 3D saying
    the face is on the far side, face points take the model's depth, not the hair's."""
    j, depth = base
    hip = (j[23] + j[24]) / 2
    world = j - hip
    face = [0, 1, 2, 3, 4, 5, 6, 9, 10]
    world[face, 2] = world[7, 2] + 0.08          # the face 8 cm behind the head's centre
    kps = keypoints(j)
    Lifter().lift_keypoints(kps, depth, CAM, box_height(kps), world=world)
    assert np.all(kps.xyz_source[face] == SOURCE_MODEL)
    assert np.all(kps.xyz[face, 2] > j[7, 2])                  # behind the ears
    front = keypoints(j)
    Lifter().lift_keypoints(front, depth, CAM, box_height(front), world=j - hip)
    assert np.all(front.xyz_source[face] == SOURCE_DEPTH)
