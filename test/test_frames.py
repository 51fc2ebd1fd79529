"""Rigid transform of every 3D field of a FrameResult."""
import numpy as np
from transforms3d.euler import euler2mat

from pose_perception.core.frames import transform_frame
from pose_perception.core.geometry import matrix_to_quat, quat_to_matrix
from pose_perception.core.types import (SOURCE_DEPTH, Face, FrameResult, Hand, HeadPose,
                                        Keypoints, Person)

R = euler2mat(0.3, -0.5, 1.2)
T = np.array([0.4, -1.0, 2.5])


def lifted(layout, n, seed):
    rng = np.random.default_rng(seed)
    k = Keypoints(layout, rng.uniform(0, 400, (n, 2)), np.ones(n))
    k.init_3d()
    k.xyz[:] = rng.uniform(-1, 3, (n, 3))
    k.xyz_valid[:] = True
    k.xyz_sigma[:] = 0.02
    k.xyz_source[:] = SOURCE_DEPTH
    k.xyz[3] = np.nan                      # an invalid point
    k.xyz_valid[3] = False
    return k


def frame():
    hp = HeadPose(np.array([0.1, -0.5, 2.0]), matrix_to_quat(euler2mat(0.1, 0.2, 0.3)))
    face = Face(lifted("face468", 468, 1), np.zeros(4), 0.9, head_pose=hp)
    p = Person(lifted("blazepose33", 33, 2), np.zeros(4), 0.9, face=face,
               hands=[Hand(lifted("hand21", 21, 3), "left", 0.8)],
               world=np.ones((33, 3)), centroid=np.array([0.0, 0.1, 2.2]),
               velocity=np.array([0.5, 0.0, -0.2]))
    lone = Face(lifted("face468", 468, 4), np.zeros(4), 0.8,
                head_pose=HeadPose(np.array([1.0, 0.0, 3.0]), np.array([0, 0, 0, 1.0])))
    return FrameResult(persons=[p], faces_without_body=[lone])


def tf(p):
    return np.asarray(p, dtype=np.float64) @ R.T + T


def test_every_3d_field_moves():
    src = frame()
    out = transform_frame(src, R, T)
    p, q = src.persons[0], out.persons[0]
    np.testing.assert_allclose(q.body.xyz, tf(p.body.xyz), atol=1e-5)
    assert np.all(np.isnan(q.body.xyz[3])) and not q.body.xyz_valid[3]
    np.testing.assert_allclose(q.hands[0].keypoints.xyz, tf(p.hands[0].keypoints.xyz), atol=1e-5)
    np.testing.assert_allclose(q.face.mesh.xyz, tf(p.face.mesh.xyz), atol=1e-5)
    np.testing.assert_allclose(q.centroid, tf(p.centroid), atol=1e-9)
    np.testing.assert_allclose(q.velocity, R @ p.velocity, atol=1e-9)     # rotated only
    np.testing.assert_array_equal(q.world, p.world)                         # model frame
    np.testing.assert_array_equal(q.body.xyz_sigma, p.body.xyz_sigma)
    np.testing.assert_allclose(q.face.head_pose.position, tf(p.face.head_pose.position))
    np.testing.assert_allclose(quat_to_matrix(q.face.head_pose.orientation),
                               R @ quat_to_matrix(p.face.head_pose.orientation), atol=1e-9)
    lone_in, lone_out = src.faces_without_body[0], out.faces_without_body[0]
    np.testing.assert_allclose(lone_out.mesh.xyz, tf(lone_in.mesh.xyz), atol=1e-5)
    np.testing.assert_allclose(quat_to_matrix(lone_out.head_pose.orientation), R,
                               atol=1e-9)
    assert q.body.xyz.dtype == np.float32
    # the input is untouched unless asked
    np.testing.assert_array_equal(src.persons[0].body.xyz, p.body.xyz)
    assert out.persons[0] is not p


def test_forms_agree_and_invert():
    src = frame()
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, T
    a = transform_frame(src, R, T)
    b = transform_frame(src, matrix=M)
    c = transform_frame(src, quaternion=matrix_to_quat(R), t=T)
    for o in (b, c):
        np.testing.assert_allclose(o.persons[0].body.xyz, a.persons[0].body.xyz, atol=1e-5)
    back = transform_frame(a, R.T, -R.T @ T, inplace=True)
    assert back is a
    np.testing.assert_allclose(back.persons[0].body.xyz, src.persons[0].body.xyz, atol=1e-5)
    np.testing.assert_allclose(back.persons[0].face.head_pose.orientation,
                               src.persons[0].face.head_pose.orientation, atol=1e-9)
