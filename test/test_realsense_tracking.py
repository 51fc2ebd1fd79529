"""People over time on real frames: the 10 consecutive realsense_two_people frames keep both
people's ids, and smoothing reduces the frame-to-frame 3D jitter of the torso joints."""
import numpy as np
import pytest

from pose_perception.core.camera import CameraModel
from pose_perception.core.perception import Perception, PerceptionConfig
from pose_perception.sources.rgbd_folder import load_rgbd_folder
from pose_perception.core.smoothing import PersonSmoother

TORSO = [11, 12, 23, 24]   # BlazePose shoulders and hips


@pytest.fixture(scope="module")
def tracked_sequence(shared_data):
    frames = load_rgbd_folder(shared_data / "rgbd_dev" / "realsense_two_people")
    assert len(frames) == 10
    cam = CameraModel.from_camera_info_dict(frames[0].camera_info)
    # tracking on, smoothing off: the raw tracked output, smoothed separately below
    perception = Perception(PerceptionConfig.from_dict({"enable_smoothing": False}))
    return [(f.stamp_s, perception.process(f.rgb, f.stamp_s, f.depth_m, cam)) for f in frames]


def test_both_people_keep_their_ids(tracked_sequence):
    ids = [sorted(p.track_id for p in r.persons) for _, r in tracked_sequence]
    print("track ids per frame:", ids)
    assert all(len(i) == 2 for i in ids), ids
    assert all(i == ids[0] for i in ids), ids
    assert 0 not in ids[0]
    # and the ids stay on the same side of the pasted seam (no swap)
    for _, r in tracked_sequence:
        side = {p.track_id: float(np.nanmedian(p.body.xy[:, 0])) < 350 for p in r.persons}
        assert sorted(side.values()) == [False, True]
        first = {p.track_id: float(np.nanmedian(p.body.xy[:, 0])) < 350
                 for p in tracked_sequence[0][1].persons}
        assert side == first


def _torso_jitter(sequence):
    """Mean frame-to-frame displacement (m) of torso joints valid in consecutive frames."""
    steps = []
    for (_, a), (_, b) in zip(sequence, sequence[1:]):
        pa = {p.track_id: p for p in a}
        for q in b:
            p = pa.get(q.track_id)
            if p is None:
                continue
            ok = p.body.xyz_valid[TORSO] & q.body.xyz_valid[TORSO]
            d = np.linalg.norm(q.body.xyz[TORSO] - p.body.xyz[TORSO], axis=1)[ok]
            steps.extend(d.tolist())
    return float(np.mean(steps)), len(steps)


def test_smoothing_reduces_torso_jitter(tracked_sequence):
    raw = [(s, r.persons) for s, r in tracked_sequence]
    smoother = PersonSmoother()
    smoothed = [(s, smoother.update(persons, s)) for s, persons in raw]
    j_raw, n_raw = _torso_jitter(raw)
    j_smooth, n_smooth = _torso_jitter(smoothed)
    print(f"torso 3D jitter (mean frame-to-frame step): raw {j_raw * 1000:.1f} mm over {n_raw} "
          f"steps, smoothed {j_smooth * 1000:.1f} mm over {n_smooth} steps")
    assert n_raw >= 40 and n_smooth >= 40
    assert j_smooth < 0.8 * j_raw
