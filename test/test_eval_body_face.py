"""Evaluation metrics (OKS, PCK, NME, matching, COCO AP) and the eval entry points."""
import json

import cv2
import numpy as np
import pytest

from pose_perception.apps import eval_body_face as ev
from pose_perception.core.layouts import BLAZEPOSE33_TO_COCO17, FACE468_TO_IBUG68
from pose_perception.core.types import Face, FrameResult, Keypoints, Person
from model_env import require_models


def test_oks_perfect_and_known_value():
    gt = np.zeros((17, 3))
    gt[:, :2] = np.arange(34).reshape(17, 2)
    gt[:, 2] = 2
    assert ev.oks(gt[:, :2], gt, area=100.0) == pytest.approx(1.0)
    pred = gt[:, :2].copy()
    pred[0, 0] += 1.0                    # nose off by 1 px: exp(-1 / (2 * 100 * (2*.026)^2))
    expect = (16 + np.exp(-1 / (2 * 100 * (2 * 0.026) ** 2))) / 17
    assert ev.oks(pred, gt, area=100.0) == pytest.approx(expect)
    gt[:, 2] = 0
    assert ev.oks(pred, gt, 100.0) == 0.0


def test_pck_hits_threshold_from_box():
    gt = np.zeros((17, 3))
    gt[:, 2] = 1
    gt[16, 2] = 0                               # unlabelled point is not counted
    pred = np.zeros((17, 2))
    pred[:8, 0] = 20.0                          # threshold 0.2 * max(50, 100) = 20: a hit
    pred[8:12, 0] = 20.5                        # misses
    assert ev.pck_hits(pred, gt, [0, 0, 50, 100]) == (12, 16)


def test_greedy_match_one_to_one():
    sim = np.array([[0.9, 0.8], [0.85, 0.1], [0.05, 0.02]])
    assert ev.greedy_match(sim, 0.2) == {0: 0}  # GT 1's good partner is taken; GT 2 too weak
    assert ev.greedy_match(sim, 0.1) == {0: 0, 1: 1}
    assert ev.greedy_match(np.zeros((0, 3)), 0.1) == {}


def test_nme_normalised_by_outer_eye_corners():
    gt = np.zeros((68, 3))
    gt[36, 0], gt[45, 0] = 0.0, 100.0
    pred = gt[:, :2] + [3.0, 4.0]             # every point 5 px off
    assert ev.nme(pred, gt) == pytest.approx(0.05)
    assert ev.nme(pred, gt, range(17, 68)) == pytest.approx(0.05)


class _FakePipeline:
    """Returns given predictions per image size (stands in for the models)."""

    def __init__(self, by_width):
        self.by_width = by_width

    def reset(self):
        pass

    def process(self, rgb, stamp_s=None):
        return self.by_width[rgb.shape[1]]


def _person_from_coco(kps, score=0.9):
    g = np.asarray(kps, np.float64).reshape(17, 3)
    xy = np.zeros((33, 2), np.float32)
    xy[list(BLAZEPOSE33_TO_COCO17)] = g[:, :2]
    return Person(body=Keypoints("blazepose33", xy, np.full(33, 0.9)), box=np.zeros(4),
                  score=score)


@pytest.fixture
def coco_two_images(tmp_path):
    rng = np.random.default_rng(3)
    anns, images = [], []
    for img_id, width in ((1, 64), (2, 80)):
        cv2.imwrite(str(tmp_path / f"{img_id}.png"), np.zeros((48, width, 3), np.uint8))
        images.append({"id": img_id, "file_name": f"{img_id}.png", "width": width, "height": 48})
    for ann_id, img_id in ((10, 1), (11, 2), (12, 2)):
        k = np.c_[rng.uniform(5, 40, (17, 2)), np.full(17, 2)]
        anns.append({"id": ann_id, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                     "keypoints": k.reshape(-1).tolist(), "num_keypoints": 17,
                     "bbox": [5, 5, 35, 35], "area": 900.0})
    anns.append({"id": 13, "image_id": 2, "category_id": 1, "iscrowd": 0, "keypoints": [0] * 51,
                 "num_keypoints": 0, "bbox": [0, 0, 2, 2], "area": 4.0})
    path = tmp_path / "kp.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person"}]}))
    return tmp_path, path, anns


def test_eval_body_perfect_and_missing_person(coco_two_images):
    root, path, anns = coco_two_images
    perfect = _FakePipeline({64: FrameResult(persons=[_person_from_coco(anns[0]["keypoints"])]),
                             80: FrameResult(persons=[_person_from_coco(anns[1]["keypoints"]),
                                                      _person_from_coco(anns[2]["keypoints"])])})
    res = ev.eval_body(root, path, pipeline=perfect)
    assert res["persons_gt"] == 3 and res["persons_found"] == 3
    assert res["pck_all_gt"] == 1.0 and res["mean_oks"] == pytest.approx(1.0)
    if res["ap"] is not None:
        assert res["ap"] == pytest.approx(1.0)
    missing = _FakePipeline({64: FrameResult(persons=[_person_from_coco(anns[0]["keypoints"])]),
                             80: FrameResult(persons=[_person_from_coco(anns[2]["keypoints"])])})
    res = ev.eval_body(root, path, pipeline=missing)
    assert res["persons_found"] == 2
    assert res["pck_all_gt"] == pytest.approx(2 / 3) and res["pck_matched"] == 1.0
    assert res["mean_oks"] == pytest.approx(2 / 3)


def test_eval_face_on_fake_mesh(tmp_path):
    cv2.imwrite(str(tmp_path / "f.png"), np.zeros((40, 50, 3), np.uint8))
    g = np.c_[np.random.default_rng(1).uniform(0, 40, (68, 2)), np.ones(68)]
    g[36, :2], g[45, :2] = (0, 10), (20, 10)
    (tmp_path / "a.json").write_text(json.dumps({
        "images": [{"id": 5, "file_name": "f.png"}],
        "annotations": [{"id": 1, "image_id": 5, "keypoints": g.reshape(-1).tolist()}]}))
    mesh = np.zeros((468, 2), np.float32)
    for j, m in enumerate(FACE468_TO_IBUG68):      # put the mesh vertices on the GT, +1 px
        for v in m:
            mesh[v] = g[j, :2] + [1.0, 0.0]
    face = Face(mesh=Keypoints("face468", mesh, np.ones(468)), box=np.zeros(4), score=1.0)
    res = ev.eval_face(tmp_path, tmp_path / "a.json",
                       pipeline=_FakePipeline({50: FrameResult(faces_without_body=[face])}))
    assert res["faces_found"] == 1 and res["faces_gt"] == 1
    assert res["nme51"] == pytest.approx(1 / 20, rel=1e-4)   # inner points: 1 px / 20 px
    assert res["nme68"] >= res["nme51"]          # jaw vertex 58 is shared by two jaw points
    res = ev.eval_face(tmp_path, tmp_path / "a.json", pipeline=_FakePipeline({50: FrameResult()}))
    assert res["faces_found"] == 0 and np.isnan(res["nme68"])


def test_not_coco_file_is_rejected(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a COCO annotation file"):
        ev.load_coco(tmp_path / "x.json")


def _models_or_skip():
    require_models()


@pytest.mark.models
def test_main_eval_face_json_last_line(shared_data, capsys):
    _models_or_skip()
    d = shared_data / "face_dev" / "300w"
    assert ev.main_eval_face(["--images", str(d), "--annotations", str(d / "test_300w.json"),
                              "--json", "--providers", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) >= {"nme68", "nme51", "faces_found", "faces_gt"}
    assert out["faces_gt"] == 2 and 0 < out["nme51"] <= out["nme68"] < 0.2


@pytest.mark.models
def test_main_eval_body_table(shared_data, capsys):
    _models_or_skip()
    d = shared_data / "coco_dev"
    assert ev.main_eval_body(["--images", str(d), "--annotations",
                              str(d / "person_keypoints.json"), "--providers", "cpu"]) == 0
    text = capsys.readouterr().out
    for key in ("pck_all_gt", "pck_matched", "mean_oks", "ap", "persons_found", "persons_gt"):
        assert key in text
