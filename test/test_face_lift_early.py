"""Faces lifted to 3D on the keypoint worker while the body model runs (Perception.detect with
the frame's depth) give what lifting them afterwards (Perception.finish) gives, each face once."""
import threading

import numpy as np
import pytest

from model_env import require_models
from test_overlap import _assert_same, _frames, _summary


def _head_poses(result):
    return [None if f.head_pose is None else
            np.concatenate([f.head_pose.position, f.head_pose.orientation])
            for f in sorted(result.faces, key=lambda f: f.track_id)]


def _counting(lifter):
    """Wrap ``lifter.lift_face`` to count its calls per thread name."""
    calls = {}
    lift_face = lifter.lift_face

    def counted(face, *args, **kw):
        name = threading.current_thread().name.split("_")[0]
        calls[name] = calls.get(name, 0) + 1
        return lift_face(face, *args, **kw)
    lifter.lift_face = counted
    return calls


@pytest.mark.parametrize("step", [1, 2])
def test_faces_lifted_beside_the_body_model_as_after_it(shared_data, step):
    """``step`` 2: depth at half the colour resolution (its model the colour one, scaled)."""
    require_models()
    from pose_perception.core.perception import Perception
    frames = [(rgb, stamp, np.ascontiguousarray(depth[::step, ::step]), cam)
              for rgb, stamp, depth, cam in _frames(shared_data)]

    late = Perception()                    # depth only in finish: every face lifted there
    late_calls = _counting(late.lifter)
    expected = []
    for rgb, stamp, depth, cam in frames:
        result = late.detect(rgb, stamp)
        assert result.faces_lifted == []
        late.finish(result, stamp, depth, cam)
        expected.append((_summary(result), _head_poses(result)))
    late.close()

    early = Perception()
    calls = _counting(early.lifter)
    lifted = faces = 0
    for (rgb, stamp, depth, cam), (summary, poses) in zip(frames, expected):
        result = early.detect(rgb, stamp, depth, cam)
        # the faces lifted early are the result's own (not copies)
        assert all(any(f is g for g in result.faces) for f in result.faces_lifted)
        assert all(f.mesh.xyz is not None for f in result.faces_lifted)
        lifted += len(result.faces_lifted)
        early.finish(result, stamp, depth, cam)
        assert result.faces_lifted == []
        _assert_same(_summary(result), summary)
        got = _head_poses(result)
        assert len(got) == len(poses)
        for a, b in zip(got, poses):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        faces += len(result.faces)
    early.close()
    # each face kept is lifted once; a few meshes on tracked crops are lifted and then
    # dropped (the crop no longer agrees with the body's head)
    wasted = calls.get("keypoints", 0) - lifted
    assert sum(calls.values()) - wasted == sum(late_calls.values())
    assert 0 <= wasted <= 0.1 * faces, (calls, lifted, faces)
    # most faces are lifted on the worker: all but those of detector frames and new crops
    assert lifted >= 0.6 * faces, (calls, lifted, faces)


def test_no_early_lift_without_usable_depth(shared_data):
    require_models()
    from pose_perception.core.perception import Perception
    rgb, stamp, depth, cam = _frames(shared_data)[0]
    per = Perception()
    try:
        result = per.detect(rgb, stamp, np.nan_to_num(depth).astype(np.uint16), cam)  # refused
        assert result.faces_lifted == []
        result = per.detect(rgb, stamp + 0.04, None, cam)
        assert result.faces_lifted == []
    finally:
        per.close()


def test_eyes_read_beside_the_body_model_are_those_of_the_meshes_kept():
    """The iris model runs on the speculated meshes on the keypoint worker; every face's eyes
    are still those of its own (kept) mesh. The built-in sample's person is close enough for
    the iris model (eyes >= iris_min_eye_px)."""
    require_models()
    from pose_perception.core.crops import CropSampler
    from pose_perception.core.perception import Perception
    from pose_perception.sources.sample import builtin_sample
    seq = builtin_sample(frames=24, people=1)
    cam, stamps = seq.camera(), seq.stamps()
    per = Perception()
    stage = per.keypoints._faces
    threads = []
    run = stage.iris.run

    def counted(sampler, meshes, min_eye_px=0.0):
        threads.append(threading.current_thread().name.split("_")[0])
        return run(sampler, meshes, min_eye_px)
    stage.iris.run = counted
    read = 0
    try:
        for frame, stamp in zip(seq.frames, stamps):
            result = per.detect(frame.rgb, stamp, frame.depth_m, cam)
            for face in result.faces:
                want = run(CropSampler(frame.rgb), [face.mesh.xy], stage.iris_min_eye_px)[0]
                np.testing.assert_array_equal(face.eyes.iris, want.iris)
                np.testing.assert_array_equal(face.eyes.contour, want.contour)
                read += int(np.isfinite(face.eyes.iris).any())
    finally:
        per.close()
    print("frames with an eye read:", read, "iris runs by thread:", threads)
    # the sample's person walks away, so eyes get too small for the iris model on later frames;
    # new crops (the first frame, detector frames) are read after the body model as before
    assert read >= 6, read
    assert threads.count("keypoints") >= 0.5 * len(threads), threads
