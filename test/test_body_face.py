"""Real models on real images: the keypoint stage's acceptance checks.

Needs the provisioned ONNX models (skips otherwise) and, for most checks, the development data
in ../shared/data (``shared_data`` fixture skips where a clone lacks it).
"""
import glob
import math

import numpy as np
import pytest

from pose_perception.apps import eval_body_face as ev
from pose_perception.core import hands as hands_mod
from pose_perception.core.crops import CropSampler
from pose_perception.core.inference import default_threads
from pose_perception.core.keypoint_pipeline import KeypointConfig, KeypointPipeline

from pose_perception.core import body as body_mod
from pose_perception.core import face as face_mod
from pose_perception.core.types import RotatedRect
from model_env import require_models


# ---------------------------------------------------------------- geometry (no models needed)
def test_heatmap_refinement_moves_to_weighted_peak():
    hm = np.full((1, 64, 64, 2), -10.0, np.float32)
    hm[0, 20, 30, 0] = 10.0                     # confident peak for landmark 0 at col 30, row 20
    hm[0, 20, 31, 0] = 10.0                     # ... and its neighbour: mean col 30.5
    hm[0, 40, 40, 1] = 0.0                      # landmark 1: max sigmoid 0.5 -> refined too
    xy = np.array([[[31.9 / 64, 21.5 / 64], [0.1, 0.1]]], np.float32)
    out = body_mod.refine_from_heatmap(xy, hm)
    assert out[0, 0] == pytest.approx([30.5 / 64, 20 / 64], abs=1e-3)
    assert out[0, 1] == pytest.approx([0.1, 0.1])          # peak outside its 7x7 window
    far = np.array([[[1.5, 0.5], [-0.2, 0.5]]], np.float32)  # outside the heatmap: kept
    assert np.array_equal(body_mod.refine_from_heatmap(far, hm), far)


def test_body_roi_from_landmarks_upright_and_lying():
    xy = np.zeros((39, 2), np.float32)
    xy[33], xy[34] = (100, 300), (100, 100)     # hip centre, point above the head
    r = body_mod.roi_from_landmarks(xy)
    assert (r.cx, r.cy, r.width, r.rotation) == pytest.approx((100, 300, 500, 0), abs=1e-4)
    xy[34] = (300, 300)                          # lying, head to the right
    assert body_mod.roi_from_landmarks(xy).rotation == pytest.approx(math.pi / 2)


def test_face_and_hand_rois_from_pose():
    pose = np.zeros((33, 2), np.float32)
    # a person facing the camera: their left eye/ear/mouth corner on the image's right
    pose[:11] = [(50, 50), (55, 45), (56, 45), (57, 45), (45, 45), (44, 45), (43, 45),
                 (62, 48), (38, 48), (54, 58), (46, 58)]
    r = face_mod.roi_from_pose(pose)
    assert r.rotation == pytest.approx(0.0)
    assert r.width == pytest.approx(24 * face_mod.POSE_FACE_SCALE)
    assert r.cx == pytest.approx(50) and r.cy < 53              # shifted up a little
    rec = face_mod.recrop_roi_from_pose(pose)
    assert rec.width == pytest.approx(72) and face_mod.tracked_roi_agrees(r, r)
    away = RotatedRect(r.cx + r.width, r.cy, r.width, r.width, 0)
    assert not face_mod.tracked_roi_agrees(away, r)
    hr = hands_mod.roi_from_pose(np.array([100, 200]), np.array([96, 180]), np.array([102, 180]))
    assert hr.rotation == pytest.approx(0.0, abs=1e-6) and hr.cy < 200   # fingers up: no turn


@pytest.fixture(scope="module")
def pipeline():
    require_models()
    return KeypointPipeline(KeypointConfig(providers=("cpu",), enable_hands=True))


@pytest.fixture(scope="module")
def realsense(shared_data):
    files = sorted(glob.glob(str(shared_data / "rgbd_dev/realsense_two_people/color/*.png")))
    assert len(files) == 10
    return [ev.read_rgb(f) for f in files]


@pytest.mark.models
def test_models_get_their_threads(pipeline):
    """Each loaded session runs with the intra-op threads its config rule gives it."""
    names = {m.name for m in pipeline.models}
    assert {"pose_landmark_full", "hand_landmark_full", "face_landmark"} <= names
    for m in pipeline.models:
        assert m.threads == (pipeline.config.model_threads(m.name) or default_threads())
        assert m.session.get_session_options().intra_op_num_threads == m.threads


def test_coco_dev_every_person_found_and_pck(pipeline, shared_data):
    d = shared_data / "coco_dev"
    res = ev.eval_body(d, d / "person_keypoints.json", pipeline=pipeline)
    assert res["persons_found"] == res["persons_gt"] == 3     # incl. two people in 40083
    assert res["pck_all_gt"] >= 0.85
    assert res["mean_oks"] >= 0.6


@pytest.mark.models
def test_300w_face_nme(pipeline, shared_data):
    d = shared_data / "face_dev" / "300w"
    res = ev.eval_face(d, d / "test_300w.json", pipeline=pipeline)
    assert res["faces_found"] == res["faces_gt"] == 2
    assert res["nme68"] <= 0.060
    assert res["nme51"] < res["nme68"]


@pytest.mark.models
def test_realsense_two_people_tracked_with_small_faces(pipeline, realsense):
    """Faces ~35-40 px wide: found through the body-derived head crop. In frames 22 and 27 the
    right-hand person's own hand covers his face (the mesh's presence is < 0.3 there), so that
    person has a face in 8 of 10 frames; everybody else in every frame."""
    pipeline.reset()
    faces = np.zeros(2, int)
    for k, img in enumerate(realsense):
        r = pipeline.process(img)
        assert r.detector_ran == (k == 0)                    # then tracked from landmarks
        assert len(r.persons) == 2
        for p in r.persons:
            side = int(np.median(p.body.xy[:, 0]) > 350)     # the seam between the two people
            if p.face is not None:
                faces[side] += 1
                assert p.face.associated and p.face.score >= 0.5
                w = p.face.box[2] - p.face.box[0]
                assert 25 < w < 60
                # the mesh sits on the body's head: nose tip near the pose's nose
                assert np.linalg.norm(p.face.mesh.xy[1] - p.body.xy[0]) < 0.3 * w
    assert faces[0] == 10 and faces[1] >= 8 and faces.sum() >= 18


@pytest.mark.models
def test_realsense_still_images_find_both_people(pipeline, realsense):
    """Without tracking (every frame on its own) the person detector misses the standing man in
    frames 22-27; where the face detector sees his face (all but 26-27, where his hand covers
    it), the face seeds a body crop and he is found anyway."""
    both = 0
    for img in realsense:
        pipeline.reset()
        r = pipeline.process(img)
        sides = sorted(int(np.median(p.body.xy[:, 0]) > 350) for p in r.persons)
        assert 0 in sides and len(sides) == len(set(sides))     # no duplicates
        both += sides == [0, 1]
    assert both >= 8


@pytest.mark.models
def test_hands_and_handedness(pipeline, realsense):
    pipeline.reset()
    r = pipeline.process(realsense[0])
    hands = [(p, h) for p in r.persons for h in p.hands]
    assert len(hands) >= 3
    for p, h in hands:
        assert h.score >= 0.5 and h.keypoints.xy.shape == (21, 2)
        wrist = hands_mod.POSE_HAND_POINTS[h.handedness][0]
        size = float(np.ptp(h.keypoints.xy, axis=0).max())
        assert np.linalg.norm(h.keypoints.xy[0] - p.body.xy[wrist]) < 0.6 * size
    # the hand model's own handedness (mirror convention undone) agrees with the body's side
    s = CropSampler(realsense[0])
    for p in r.persons:
        jobs = hands_mod.hand_crops_for_body(p.body.xy, p.body.score)
        out = pipeline._hand_lm.run(s, [roi for _, roi, _ in jobs])
        for (side, _, _), flag, left in zip(jobs, out.flag, out.model_left):
            if flag >= 0.5:
                assert (left > 0.5) == (side == "left")


@pytest.mark.models
def test_grace_hopper_portrait():
    cbook = pytest.importorskip("matplotlib.cbook")
    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except Exception as e:  # noqa: BLE001 - sample data not installed
        pytest.skip(f"matplotlib sample data missing: {e}")
    require_models()
    pl = KeypointPipeline(KeypointConfig(providers=("cpu",), face_detector="none"))
    img = ev.read_rgb(path)
    r = pl.process(img)
    assert len(r.persons) == 1
    p = r.persons[0]
    assert p.face is not None and p.face.score > 0.9
    ib = p.face.ibug68().xy
    eye_r, eye_l = ib[36:42].mean(0), ib[42:48].mean(0)
    assert abs(math.degrees(math.atan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0]))) < 20
    assert eye_r[0] < ib[30, 0] < eye_l[0]      # nose tip between the eyes ...
    assert ib[30, 1] < ib[57, 1]                # ... and above the lower lip
    assert p.face.box[0] <= p.body.xy[0, 0] <= p.face.box[2]


@pytest.mark.models
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 900), (900, 2), (240, 1000), (1000, 240)])
def test_any_image_size(pipeline, shape):
    pipeline.reset()
    img = np.random.default_rng(0).integers(0, 255, shape + (3,), dtype=np.uint8)
    r = pipeline.process(img)
    assert set(r.timings_ms) == {"detect", "body", "face", "hands"}
    for p in r.persons:
        assert np.isfinite(p.body.xy).all()


@pytest.mark.models
def test_huge_image_same_people(pipeline, realsense):
    import cv2
    big = cv2.resize(realsense[0], None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    pipeline.reset()
    small = pipeline.process(realsense[0])
    pipeline.reset()
    large = pipeline.process(big)
    assert len(large.persons) == len(small.persons) == 2

    def left(p):
        return p.box[0]

    for a, b in zip(sorted(small.persons, key=left), sorted(large.persons, key=left)):
        vis = a.body.score > 0.8
        err = np.median(np.linalg.norm(b.body.xy[vis] / 4 - a.body.xy[vis], axis=1))
        assert err < 3.0                                    # pixels of the small image


@pytest.mark.models
def test_bad_input_is_rejected(pipeline):
    with pytest.raises(ValueError, match="HxWx3"):
        pipeline.process(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        pipeline.process(np.zeros((10, 10, 3), np.float32))


@pytest.mark.models
def test_person_fields_and_reset(pipeline, realsense):
    pipeline.reset()
    first = pipeline.process(realsense[0])
    second = pipeline.process(realsense[1])
    assert first.detector_ran and not second.detector_ran
    for p in first.persons:
        assert p.body.layout == "blazepose33" and p.body.xy.shape == (33, 2)
        assert ((0 <= p.body.score) & (p.body.score <= 1)).all()
        assert p.world.shape == (33, 3) and np.abs(p.world).max() < 2.0
        assert p.roi is not None and p.next_roi is not None and 0.5 <= p.score <= 1
        assert not math.isnan(p.detector_score)
        assert p.box[0] < p.box[2] and p.box[1] < p.box[3]
    assert all(math.isnan(p.detector_score) for p in second.persons)
    pipeline.reset()
    assert pipeline.process(realsense[2]).detector_ran
