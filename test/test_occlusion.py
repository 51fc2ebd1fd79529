"""Occlusion geometry: batched ray-capsule ranges against single capsules and closed forms, and
the skeleton index tables the occlusion reasoning uses."""
import numpy as np
import pytest

from pose_perception.core.camera import CameraModel
from pose_perception.core.lifting import Lifter
from pose_perception.core.occlusion import SKELETONS, ray_capsule_range, skeleton_tables
from pose_perception.core.types import FrameResult, Keypoints, Person


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_ray_through_a_sphere_and_a_cylinder_closed_form():
    dirs = unit([[0, 0, 1], [0, 1, 0], [0.0, 0.05, 1]])
    # sphere (both ends the same) of radius 0.1 at 2 m on the axis
    t_in, t_out = ray_capsule_range(dirs, [0, 0, 2], [0, 0, 2], 0.1, exit_range=True)
    assert t_in[0] == pytest.approx(1.9) and t_out[0] == pytest.approx(2.1)
    assert t_in[1] == np.inf and t_out[1] == -np.inf
    # horizontal cylinder x in [-1, 1] at z = 3, radius 0.2: the axis ray enters at 2.8
    t_in, t_out = ray_capsule_range(dirs, [-1, 0, 3], [1, 0, 3], 0.2, exit_range=True)
    assert t_in[0] == pytest.approx(2.8) and t_out[0] == pytest.approx(3.2)
    # behind the camera: no hit
    assert ray_capsule_range(dirs[:1], [-1, 0, -3], [1, 0, -3], 0.2)[0] == np.inf


def test_batched_capsules_equal_one_at_a_time():
    rng = np.random.default_rng(0)
    m, k = 50, 12
    dirs = unit(np.concatenate([rng.normal(0, 0.3, (m, 2)), np.ones((m, 1))], axis=1))
    a = rng.normal(0, 0.4, (k, 3)) + [0, 0, 2.5]
    b = a + rng.normal(0, 0.3, (k, 3))
    b[3] = a[3]                                       # a sphere among them
    r = rng.uniform(0.03, 0.2, (k, 1)) + rng.uniform(0, 0.05, (k, m))   # per ray radii
    t_in, t_out = ray_capsule_range(dirs, a, b, r, exit_range=True)
    assert t_in.shape == t_out.shape == (k, m)
    for i in range(k):
        ti, to = ray_capsule_range(dirs, a[i], b[i], r[i], exit_range=True)
        np.testing.assert_allclose(t_in[i], ti, rtol=1e-12)
        np.testing.assert_allclose(t_out[i], to, rtol=1e-12)
    hit = np.isfinite(t_in)
    assert 0 < hit.sum() < hit.size and np.all(t_out[hit] >= t_in[hit])


def test_skeleton_tables_describe_the_spec():
    spec = SKELETONS["blazepose33"]
    tab = skeleton_tables(spec, 33)
    assert skeleton_tables(spec, 33) is tab                 # built once
    assert len(tab.bone_a) == len(spec.bones) and tab.radius.size == len(spec.bones) + 2
    for k, (a, b, *_) in enumerate(spec.bones):
        assert (k, b) in tab.adjacent[a] and (k, a) in tab.adjacent[b]
        assert tab.members[k, [a, b]].all() and tab.members[k].sum() == 2
    trunk = len(spec.bones)                                   # parts follow the bones
    np.testing.assert_allclose(tab.end_a[trunk, [11, 12]], 0.5)
    assert not tab.in_skel[0] and tab.in_skel[[11, 12, 23, 24, 31, 32]].all()


def test_depth_on_the_colour_grid_reads_the_same_pixels_however_the_camera_is_given():
    """Registered depth of the colour image's size: passing an equal (not the same) depth
    camera model must lift exactly as passing none."""
    cam = CameraModel(64, 48, [[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    twin = CameraModel(64, 48, [[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    depth = np.full((48, 64), 2.0, np.float32)
    depth[:, 40:] = 3.0
    rng = np.random.default_rng(3)
    xy = np.stack([rng.uniform(5, 58, 33), rng.uniform(5, 42, 33)], axis=1)
    runs = []
    for dcam in (None, twin, cam):
        person = Person(Keypoints("blazepose33", xy, np.ones(33)), np.array([5, 5, 58, 42.0]),
                        1.0)
        Lifter().lift_frame(FrameResult(persons=[person]), depth, cam, dcam)
        runs.append(person.body.xyz)
    assert np.isfinite(runs[0]).any()
    for other in runs[1:]:
        np.testing.assert_array_equal(other, runs[0])
