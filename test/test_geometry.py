"""core.geometry: boxes, quaternions, rigid transforms and the rigid fit (each tested here once)."""
import numpy as np
import pytest
from transforms3d.euler import euler2mat

from pose_perception.core import geometry as geo

A = np.array([0, 0, 10, 10.])
BOXES = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)


def test_box_iou_matrix_and_its_one_row_form():
    m = geo.box_iou_matrix(np.stack([A, [5, 0, 15, 10]]), BOXES)
    assert m.shape == (2, 4)
    np.testing.assert_allclose(m[0], [1.0, 1 / 3, 0.0, 0.0])
    np.testing.assert_allclose(m[1], [1 / 3, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(geo.box_iou(A, BOXES), m[0])
    assert geo.box_iou_matrix(np.zeros((0, 4)), BOXES).shape == (0, 4)
    assert geo.box_iou(A, np.zeros((0, 4))).shape == (0,)


def test_covered_fraction_is_the_share_of_the_first_box():
    assert geo.covered_fraction(A, np.array([[0, 0, 10, 5], [-5, -5, 20, 20], [20, 0, 30, 5]])) \
        .tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert geo.covered_fraction(np.zeros(4), BOXES).tolist() == [0, 0, 0, 0]   # empty box


def test_nms_keeps_the_best_of_overlapping_boxes_only():
    boxes = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [30, 0, 40, 20]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    assert geo.nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert geo.nms(boxes, scores, 0.95).tolist() == [1, 2, 0]     # 0.82 overlap kept
    assert geo.nms(boxes, scores, 0.5, max_detections=1).tolist() == [1]
    assert geo.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_quaternions_are_x_y_z_w_with_w_non_negative():
    np.testing.assert_allclose(geo.matrix_to_quat(np.eye(3)), [0, 0, 0, 1])
    R = euler2mat(0.3, -0.2, 1.0)
    q = geo.matrix_to_quat(R)
    assert q[3] >= 0 and np.isclose(np.linalg.norm(q), 1)
    np.testing.assert_allclose(geo.quat_to_matrix(q), R, atol=1e-12)
    np.testing.assert_allclose(geo.quat_to_matrix(-3 * q), R, atol=1e-12)   # normalised
    # 90 degrees about z, written out
    np.testing.assert_allclose(geo.quat_to_matrix([0, 0, np.sqrt(0.5), np.sqrt(0.5)]),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    for bad in ([0, 0, 0, 0], [np.nan, 0, 0, 1]):
        with pytest.raises(ValueError, match="quaternion"):
            geo.quat_to_matrix(bad)


def test_rpy_and_the_quaternion_product():
    roll, pitch, yaw = 0.1, -0.4, 2.0
    Rz, Ry, Rx = (euler2mat(0, 0, yaw), euler2mat(0, pitch, 0), euler2mat(roll, 0, 0))
    np.testing.assert_allclose(geo.quat_to_matrix(geo.quat_from_rpy(roll, pitch, yaw)),
                               Rz @ Ry @ Rx, atol=1e-12)
    a, b = geo.quat_from_rpy(0.3, 0, 0), geo.quat_from_rpy(0, 0.5, 0.2)
    np.testing.assert_allclose(geo.quat_to_matrix(geo.quat_multiply(a, b)),
                               geo.quat_to_matrix(a) @ geo.quat_to_matrix(b), atol=1e-12)


def test_transforms_compose_invert_and_move_points():
    T = geo.make_transform([0, 0, 1.2], [-0.5, 0.5, -0.5, 0.5])   # optical -> x forward, z up
    np.testing.assert_allclose(geo.apply(T, [[0, 0, 1.0]])[0], [1, 0, 1.2], atol=1e-12)
    np.testing.assert_allclose(geo.rotate(T, [[0, 0, 1.0]])[0], [1, 0, 0], atol=1e-12)
    assert geo.is_identity(T @ geo.invert(T), tol=1e-12) and not geo.is_identity(T)
    p32 = np.array([[1, 2, 3], [np.nan, 0, 0]], np.float32)
    out = geo.transform_points(p32, T[:3, :3], T[:3, 3])
    assert out.dtype == np.float32 and np.isnan(out[1]).all()
    np.testing.assert_allclose(out[0], geo.apply(T, p32[:1])[0], atol=1e-6)


def test_rigid_transform_accepts_the_three_forms_alike():
    R, t = euler2mat(0.2, 0.1, -0.3), np.array([1.0, 2.0, 3.0])
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, t
    for kwargs in (dict(R=R, t=t), dict(matrix=M), dict(quaternion=geo.matrix_to_quat(R), t=t)):
        R2, t2 = geo.rigid_transform(**kwargs)
        np.testing.assert_allclose(R2, R, atol=1e-12)
        np.testing.assert_allclose(t2, t)


@pytest.mark.parametrize("kwargs", [
    dict(R=np.diag([1.0, 1.0, -1.0]), t=np.zeros(3)),   # a reflection
    dict(R=2 * np.eye(3), t=np.zeros(3)),                # not orthonormal
    dict(R=np.eye(3), t=[np.nan, 0, 0]),
    dict(matrix=np.ones((4, 4))),
    dict(matrix=np.eye(3)),
    dict(quaternion=[0, 0, 0, 0], t=np.zeros(3)),
    dict(t=np.zeros(3)),
])
def test_rigid_transform_rejects_non_rigid(kwargs):
    with pytest.raises(ValueError):
        geo.rigid_transform(**kwargs)


def test_weighted_kabsch_recovers_the_motion_and_never_reflects():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(12, 3))
    R, t = euler2mat(0.4, -0.3, 1.1), np.array([0.5, -1.0, 2.0])
    dst = src @ R.T + t
    R2, t2 = geo.weighted_kabsch(src, dst)
    np.testing.assert_allclose(R2, R, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    # one wild point with a tiny weight barely moves the weighted fit
    bad = dst.copy()
    bad[0] += 5.0
    w = np.ones(len(src))
    w[0] = 1e-9
    R3, t3 = geo.weighted_kabsch(src, bad, w)
    np.testing.assert_allclose(R3, R, atol=1e-6)
    # a mirrored target: the best *proper* rotation (det +1)
    R4, _ = geo.weighted_kabsch(src, src * [1, 1, -1])
    assert np.linalg.det(R4) == pytest.approx(1.0)


def test_medians_are_numpys():
    from pose_perception.core.geometry import median, point_median
    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 10, 11):
        x = rng.normal(size=n)
        assert median(x) == np.median(x)
        pts = rng.normal(size=(n, 3))
        np.testing.assert_array_equal(point_median(pts), np.median(pts, axis=0))
    assert median(np.arange(6.0).reshape(2, 3)) == 2.5                 # all values
    assert np.isnan(median(np.array([]))) and np.isnan(median(np.array([1.0, np.nan])))
