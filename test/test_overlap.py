"""OverlappedPerception: frame N finished on a second thread while frame N+1 is detected gives
what Perception.process gives, frame by frame, in order; its errors reach the caller."""
import threading

import numpy as np
import pytest

from pose_perception.core.overlap import OverlappedPerception, overlap_wanted
from pose_perception.core.types import FrameResult
from model_env import require_models


def _summary(result):
    """What a frame tells: ids, 2D and 3D keypoints, centroids, interactions, events."""
    people = []
    for p in sorted(result.persons, key=lambda p: p.track_id):
        face = p.face
        people.append((p.track_id, p.body.xy.copy(),
                       None if p.body.xyz is None else p.body.xyz.copy(),
                       None if p.centroid is None else np.asarray(p.centroid).copy(),
                       None if face is None or face.mesh.xyz is None else face.mesh.xyz.copy()))
    inter = [(i.track_id, i.looking, i.engagement, round(i.engagement_level, 9),
              None if i.body is None else (i.body.posture, [g.name for g in i.body.gestures]))
             for i in result.interactions]
    events = [(e.track_id, e.event) for e in result.events]
    return people, inter, events, list(result.warnings), result.time_reset


def _assert_same(a, b):
    pa, ia, ea, wa, ra = a
    pb, ib, eb, wb, rb = b
    assert [p[0] for p in pa] == [p[0] for p in pb]
    for x, y in zip(pa, pb):
        for u, v in zip(x[1:], y[1:]):
            if u is None or v is None:
                assert u is None and v is None
            else:
                np.testing.assert_allclose(u, v, rtol=0, atol=1e-9)
    assert (ia, ea, wa, ra) == (ib, eb, wb, rb)


def _frames(shared_data):
    from pose_perception.core.camera import CameraModel
    from pose_perception.sources.rgbd_folder import load_rgbd_folder
    frames = load_rgbd_folder(shared_data / "rgbd_dev" / "realsense_two_people")
    cam = CameraModel.from_camera_info_dict(frames[0].camera_info)
    # twice through, the second time with its stamps back at the start (a bag loop: reset)
    return [(f.rgb, f.stamp_s + (0.0 if i < 10 else -0.05), f.depth_m, cam)
            for i, f in enumerate(frames + frames)]


def test_overlapped_gives_the_sequential_results(shared_data):
    require_models()
    from pose_perception.core.perception import Perception
    frames = _frames(shared_data)
    seq = Perception()
    expected = [_summary(seq.process(*f)) for f in frames]
    seq.close()

    per = Perception()
    got, threads = [], set()

    def on_result(result, k):
        threads.add(threading.current_thread().name)
        got.append((k, _summary(result), result.timings_ms["total"]))

    runner = OverlappedPerception(per, on_result)
    for k, f in enumerate(frames):
        runner.submit(*f, context=k)
    runner.close()
    per.close()
    assert [k for k, _, _ in got] == list(range(len(frames)))
    for (_, s, total), e in zip(got, expected):
        _assert_same(s, e)
        assert total > 0
    assert got[10][1][4] and not any(g[1][4] for k, g in enumerate(got) if k != 10)
    assert per.resets == 1
    assert all(name.startswith("perception_finish") for name in threads), threads


class _FakePerception:
    """detect/finish that record what they were given; finish fails on frame 'bad'."""

    def __init__(self):
        self.attention_target = (0.0, 0.0, 0.0)
        self.up = (0.0, -1.0, 0.0)
        self.finished = []
        self.in_finish = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def detect(self, rgb, stamp_s, depth_m=None, camera=None, depth_camera=None):
        r = FrameResult()
        r.timings_ms["inference"] = 0.0
        return r

    def finish(self, result, stamp_s, depth_m=None, camera=None, depth_camera=None,
               attention_target=None, up=None):
        self.in_finish.set()
        self.release.wait(5.0)
        if stamp_s == 2.0:
            raise RuntimeError("bad frame")
        self.finished.append((stamp_s, attention_target, up))
        return result


def test_order_targets_and_errors():
    per = _FakePerception()
    results, errors = [], []
    runner = OverlappedPerception(per, lambda r, c: results.append(c),
                                  on_error=lambda e, c: errors.append((str(e), c)))
    for k in range(5):
        per.attention_target = (float(k), 0.0, 0.0)   # changed between frames by the caller
        runner.submit(None, float(k), context=f"frame{k}")
    runner.close()
    assert results == ["frame0", "frame1", "frame3", "frame4"]
    assert errors == [("bad frame", "frame2")]
    # each frame finished with the robot's point it was submitted with
    targets = [(s, t[0]) for s, t, _ in per.finished]
    assert targets == [(0.0, 0.0), (1.0, 1.0), (3.0, 3.0), (4.0, 4.0)]


def test_one_frame_in_hand_and_errors_raised_without_handler():
    per = _FakePerception()
    per.release.clear()
    runner = OverlappedPerception(per, lambda r, c: None)
    runner.submit(None, 0.0)
    assert per.in_finish.wait(5.0)
    done = threading.Event()

    def second():
        runner.submit(None, 1.0)      # detected, then waits for frame 0's finish
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(0.3)         # nothing queues up behind a frame being finished
    per.release.set()
    t.join(5.0)
    assert done.is_set()
    runner.submit(None, 2.0)          # its finish raises: no handler, so the next call raises
    with pytest.raises(RuntimeError, match="bad frame"):
        runner.flush()
    runner.close()


@pytest.mark.parametrize("mode,provider,wanted", [
    ("auto", "CPUExecutionProvider", False), ("auto", "CUDAExecutionProvider", True),
    ("auto", "TensorrtExecutionProvider", True), ("always", "CPUExecutionProvider", True),
    ("never", "CUDAExecutionProvider", False)])
def test_frame_overlap_modes(mode, provider, wanted):
    """auto overlaps where the models run on a GPU: on a CPU the halves take each other's cores"""
    assert overlap_wanted(mode, provider) is wanted


def test_frame_overlap_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="always, never"):
        overlap_wanted("true", "CPUExecutionProvider")
