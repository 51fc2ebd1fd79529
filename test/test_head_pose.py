"""Head pose from a face mesh: 3D fit, PnP fallback, axis and quaternion conventions."""
import numpy as np
import pytest
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat

from pose_perception.core.camera import CameraModel
from pose_perception.core.geometry import quat_to_matrix
from pose_perception.core.head_pose import CANONICAL_FACE_M, HeadPoseConfig, estimate_head_pose
from pose_perception.core.types import SOURCE_DEPTH, Keypoints

CAM = CameraModel(640, 480, [[600.0, 0, 320.0], [0, 600.0, 240.0], [0, 0, 1]],
                  [0.08, -0.15, 0.001, 0.0005, 0.04], "plumb_bob")
IDS = np.array(sorted(CANONICAL_FACE_M))
MODEL = np.array([CANONICAL_FACE_M[i] for i in IDS])
# face frame (x forward, y left, z up) of a face looking straight into the camera
FRONTAL = np.column_stack([[0, 0, -1], [1, 0, 0], [0, -1, 0]]).astype(float)


def make_face(R, pos, scale=1.0, noise=0.0, depth_ids=None, cam=CAM, seed=0):
    pts = (scale * MODEL) @ R.T + pos
    xy = np.full((468, 2), np.nan)
    xy[IDS] = cam.project(pts)
    mesh = Keypoints("face468", xy, np.ones(468))
    mesh.init_3d()
    sel = IDS if depth_ids is None else np.asarray(depth_ids)
    rows = np.searchsorted(IDS, sel)
    rng = np.random.default_rng(seed)
    mesh.xyz[sel] = pts[rows] + rng.normal(0, noise, (len(sel), 3))
    mesh.xyz_valid[sel] = True
    mesh.xyz_source[sel] = SOURCE_DEPTH
    mesh.xyz_sigma[sel] = max(noise, 1e-3)
    return mesh


def angle_deg(Ra, Rb):
    c = (np.trace(Ra.T @ Rb) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def poses(n=12, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yaw, pitch, roll = np.radians(rng.uniform([-60, -30, -20], [60, 30, 20]))
        R = FRONTAL @ euler2mat(roll, pitch, yaw, "sxyz")   # in the face frame
        pos = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(0.8, 2.5)])
        yield R, pos


def test_depth_fit_recovers_the_pose():
    for R, pos in poses():
        hp = estimate_head_pose(make_face(R, pos, noise=0.001), CAM,
                                HeadPoseConfig(method="depth"))
        assert hp is not None and hp.valid
        assert angle_deg(quat_to_matrix(hp.orientation), R) < 1.0
        assert np.linalg.norm(hp.position - pos) < 0.005


def test_pnp_recovers_the_pose_without_depth():
    for R, pos in poses(seed=1):
        mesh = make_face(R, pos)
        mesh.xyz = None
        hp = estimate_head_pose(mesh, CAM)
        assert hp is not None
        assert angle_deg(quat_to_matrix(hp.orientation), R) < 1.0
        assert np.linalg.norm(hp.position - pos) < 0.01


def test_noisy_depth_falls_back_to_pnp():
    """At 2.5 m a 2 cm depth noise swamps the face's relief: 'auto' must not use the 3D fit."""
    R, pos = next(poses(seed=2))
    pos = np.array([0.1, 0.0, 2.5])
    mesh = make_face(R, pos, noise=0.02, seed=3)
    auto = estimate_head_pose(mesh, CAM)
    forced = estimate_head_pose(mesh, CAM, HeadPoseConfig(method="depth"))
    e_auto = angle_deg(quat_to_matrix(auto.orientation), R)
    e_forced = angle_deg(quat_to_matrix(forced.orientation), R)
    assert e_auto < 2.0 and e_forced > 3 * e_auto
    assert np.linalg.norm(auto.position - pos) < 0.03


def test_pnp_distance_is_corrected_by_depth():
    """A face 12 % larger than the canonical one: PnP alone misjudges its distance by ~12 %,
    a few depth-valid landmarks put it where it is."""
    R, pos = FRONTAL, np.array([0.0, 0.05, 2.0])
    mesh = make_face(R, pos, scale=1.12)
    mesh.xyz = None
    pnp = estimate_head_pose(mesh, CAM)
    assert abs(pnp.position[2] - pos[2]) > 0.15
    mesh = make_face(R, pos, scale=1.12, noise=0.002, depth_ids=[1, 4, 168, 6])
    hp = estimate_head_pose(mesh, CAM)                  # too few 3D points for the 3D fit
    assert abs(hp.position[2] - pos[2] * 1.0) < 0.05
    assert angle_deg(quat_to_matrix(hp.orientation), R) < 1.0


def test_axes_and_quaternion_order():
    """x forward out of the face, y to the person's left, z up; quaternion stored x, y, z, w."""
    hp = estimate_head_pose(make_face(FRONTAL, np.array([0.0, 0.0, 1.5])), CAM)
    R = quat_to_matrix(hp.orientation)
    np.testing.assert_allclose(R[:, 0], [0, 0, -1], atol=1e-3)   # looks at the camera
    np.testing.assert_allclose(R[:, 1], [1, 0, 0], atol=1e-3)    # person's left = image right
    np.testing.assert_allclose(R[:, 2], [0, -1, 0], atol=1e-3)   # up = -y (image up)
    w, x, y, z = mat2quat(R)
    np.testing.assert_allclose(np.abs(hp.orientation), np.abs([x, y, z, w]), atol=1e-6)
    # the sellion: position between the eyes
    np.testing.assert_allclose(hp.position, [0, 0, 1.5], atol=0.005)


def test_fisheye_camera_pnp():
    cam = CameraModel(640, 480, [[300.0, 0, 320.0], [0, 300.0, 240.0], [0, 0, 1]],
                      [0.05, -0.01, 0.002, -0.001], "equidistant")
    R, pos = next(poses(seed=4))
    mesh = make_face(R, pos, cam=cam)
    mesh.xyz = None
    hp = estimate_head_pose(mesh, cam)
    assert angle_deg(quat_to_matrix(hp.orientation), R) < 1.5


def test_not_enough_points_and_bad_input():
    mesh = make_face(FRONTAL, np.array([0, 0, 1.5]))
    mesh.xyz = None
    mesh.xy[IDS[4:]] = np.nan
    assert estimate_head_pose(mesh, CAM) is None
    assert estimate_head_pose(make_face(FRONTAL, np.array([0, 0, 1.5]), depth_ids=[1, 4]),
                              CAM, HeadPoseConfig(method="depth")) is None
    with pytest.raises(ValueError):
        estimate_head_pose(Keypoints("hand21", np.zeros((21, 2)), np.ones(21)), CAM)
    with pytest.raises(ValueError):
        HeadPoseConfig(method="magic")
