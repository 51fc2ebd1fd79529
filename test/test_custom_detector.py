"""Person detectors for top-down custom models, config loading, and detector -> model chaining."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from pose_perception.core.custom import CustomModelConfig, ModelMetadataError, load_estimator
from pose_perception.core.custom.detector import (BlazePoseDetector, DetectorConfig,
                                                  FullImageDetector, PersonDetector,
                                                  build_detector)
from test_custom_common import const_model, gaussian_maps, mmpose_forward

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "custom_models"
IMG_H, IMG_W = 320, 400          # letterboxed into 640 x 640 with ratio 1.6


def _yolo_out(rows, nc=80):
    """[1, 4 + nc, N] from rows (cx, cy, w, h, class, score) in input pixels."""
    out = np.zeros((len(rows), 4 + nc), np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(rows):
        out[i, :4] = (cx, cy, w, h)
        out[i, 4 + c] = s
    return out.T[None]


@pytest.fixture
def yolo_det(tmp_path):
    rows = [(200, 320, 100, 300, 0, 0.9),     # person: input x 150-250, y 170-470
            (205, 322, 100, 300, 0, 0.7),     # duplicate
            (500, 300, 120, 80, 2, 0.95),     # car
            (480, 320, 60, 200, 0, 0.1)]      # weak person
    return const_model(tmp_path / "yolov8n.onnx", [1, 3, 640, 640], {"output0": _yolo_out(rows)},
                       metadata={"names": str({i: f"c{i}" for i in range(80)})})


def test_yolo_detector_filters_class_nms_and_letterbox(yolo_det):
    det = build_detector({"type": "yolo", "path": str(yolo_det), "score_threshold": 0.3})
    assert isinstance(det, PersonDetector)
    boxes, scores = det.detect(np.zeros((IMG_H, IMG_W, 3), np.uint8))
    assert boxes.shape == (1, 4) and scores[0] == pytest.approx(0.9)
    # centred letterbox: 400x320 -> 640x512 at y offset 64
    assert np.allclose(boxes[0], [150 / 1.6, (170 - 64) / 1.6, 250 / 1.6, (470 - 64) / 1.6],
                       atol=1e-3)
    cars, _ = build_detector({"type": "yolo", "path": str(yolo_det), "classes": [2]}).detect(
        np.zeros((IMG_H, IMG_W, 3), np.uint8))
    assert np.allclose(cars[0], [440 / 1.6, (260 - 64) / 1.6, 560 / 1.6, (340 - 64) / 1.6],
                       atol=1e-3)
    with pytest.raises(ModelMetadataError, match="80 classes"):
        build_detector({"type": "yolo", "path": str(yolo_det), "classes": [80]})


def test_rtmdet_detector(tmp_path):
    dets = np.array([[[100, 50, 300, 450, 0.8], [10, 10, 50, 50, 0.9], [400, 100, 500, 400, 0.2]]],
                    np.float32)
    labels = np.array([[0, 3, 0]], np.float32)
    path = const_model(tmp_path / "rtmdet.onnx", [1, 3, 640, 640],
                       {"dets": dets, "labels": labels})
    boxes, scores = build_detector({"type": "rtmdet", "path": str(path)}).detect(
        np.zeros((IMG_H, IMG_W, 3), np.uint8))
    # top-left letterbox: input = image * 1.6, no offset; the 0.2 person and the class-3 box go
    assert np.allclose(boxes, [[100 / 1.6, 50 / 1.6, 300 / 1.6, 450 / 1.6]], atol=1e-3)
    assert np.allclose(scores, [0.8])


def test_blazepose_adapter_boxes_from_body_axis():
    calls = []

    def detect(sampler, min_score=None, max_detections=None):
        calls.append((sampler.width, sampler.height, min_score, max_detections))
        return [SimpleNamespace(keypoints=np.array([[100.0, 200.0], [100.0, 100.0]]), score=0.6),
                SimpleNamespace(keypoints=np.array([[300.0, 200.0], [350.0, 200.0]]), score=0.55)]

    det = BlazePoseDetector(SimpleNamespace(detect=detect), min_score=0.4, max_detections=3)
    boxes, scores = det.detect(np.zeros((400, 500, 3), np.uint8))
    assert calls == [(500, 400, 0.4, 3)]
    # upright: hip centre (100, 200), 100 px to the top point: 200 long, 100 wide
    assert np.allclose(boxes[0], [50, 100, 150, 300])
    # lying (axis along +x): 100 long, 50 wide, clipped to the image
    assert np.allclose(boxes[1], [250, 175, 350, 225])
    assert np.allclose(scores, [0.6, 0.55])
    assert isinstance(build_detector(None), FullImageDetector)
    with pytest.raises(ValueError, match="detector.type"):
        DetectorConfig.from_dict({"type": "ssd"})
    with pytest.raises(ValueError, match="needs detector.path"):
        DetectorConfig.from_dict({"type": "yolo"})


def test_yaml_detector_then_heatmap_model(tmp_path, yolo_det):
    """YAML with relative model paths: YOLO boxes feed the HRNet-style crop."""
    img = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    box = (150 / 1.6, 106 / 1.6, 250 / 1.6, 406 / 1.6)      # what the detector returns
    rng = np.random.default_rng(3)
    truth = np.column_stack([rng.uniform(box[0], box[2], 17), rng.uniform(box[1], box[3], 17)])
    cells = mmpose_forward(truth, box, (192, 256)) / 4.0
    const_model(tmp_path / "hrnet.onnx", [1, 3, 256, 192],
                {"heatmaps": gaussian_maps(cells, 64, 48)[None]})
    cfg = yaml.safe_load((CONFIG_DIR / "hrnet_w32_coco_256x192.yaml").read_text())
    cfg.update(path="hrnet.onnx", min_person_score=0.0)
    cfg["detector"].update(path=yolo_det.name, score_threshold=0.3)
    (tmp_path / "my_model.yaml").write_text(yaml.safe_dump(cfg))
    people = load_estimator(tmp_path / "my_model.yaml").estimate(img)
    assert len(people) == 1
    assert people[0].detector_score == pytest.approx(0.9)
    assert np.abs(people[0].body.xy - truth).max() < 1.0


def test_builtin_blazepose_detector_feeds_a_real_heatmap_model(shared_data):
    """Real network, real photos: BlazePose boxes -> ``pose_landmark_full`` run as a generic
    top-down heatmap model (NHWC, [0, 1] input, 64x64 heatmap logits of 39 points) -> COCO
    ground truth. Exercises crop, NHWC, activation, DARK and back-projection on real data."""
    import json

    import cv2

    from pose_perception.core import model_store
    from pose_perception.core.custom import build_estimator
    from pose_perception.core.layouts import BLAZEPOSE33_NAMES, BLAZEPOSE33_TO_COCO17, Layout, \
        register_layout

    try:
        model_store.model_path("pose_detection"), model_store.model_path("pose_landmark_full")
    except model_store.ModelNotFoundError as exc:
        pytest.skip(str(exc))
    register_layout(Layout("test_mp39", BLAZEPOSE33_NAMES + tuple(f"aux{i}" for i in range(6))))
    est = build_estimator({"family": "heatmap", "path": "pose_landmark_full.onnx",
                           "layout": "test_mp39", "input_size": [256, 256], "mean": [0, 0, 0],
                           "std": [255, 255, 255], "input_layout": "NHWC",
                           "heatmap_activation": "sigmoid",
                           "detector": {"type": "blazepose"}})
    gt = json.loads((shared_data / "coco_dev" / "person_keypoints.json").read_text())
    matched = 0
    for im in gt["images"]:
        bgr = cv2.imread(str(shared_data / "coco_dev" / im["file_name"]))
        people = est.estimate(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        assert people, im["file_name"]
        for ann in gt["annotations"]:
            if ann["image_id"] != im["id"] or ann["num_keypoints"] == 0:
                continue
            k = np.array(ann["keypoints"], float).reshape(17, 3)
            vis = k[:, 2] > 0
            errs = [np.median(np.linalg.norm(p.body.xy[list(BLAZEPOSE33_TO_COCO17)][vis]
                                             - k[vis, :2], axis=1)) for p in people]
            if min(errs) < 0.15 * np.sqrt(ann["area"]):
                matched += 1
    assert matched >= 2      # the one person of 785 and the detected person of 40083


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_configs_are_valid(path):
    cfg = CustomModelConfig.from_yaml(path)
    assert cfg.path.endswith(".onnx")
    assert cfg.input_size is not None and cfg.base_dir == str(CONFIG_DIR)


def test_config_errors_are_clear():
    base = {"family": "heatmap", "path": "x.onnx", "layout": "coco17"}
    with pytest.raises(ValueError, match=r"unknown custom model config keys \['flip'\]"):
        CustomModelConfig.from_dict({**base, "flip": True})
    with pytest.raises(ValueError, match="family must be one of"):
        CustomModelConfig.from_dict({**base, "family": "detr"})
    with pytest.raises(ValueError, match=r"needs \['layout'\]"):
        CustomModelConfig.from_dict({"family": "heatmap", "path": "x.onnx"})
    with pytest.raises(ValueError, match="unknown openpose keys"):
        CustomModelConfig.from_dict({**base, "family": "openpose", "layout": "openpose18",
                                     "openpose": {"tresh": 1}})
    with pytest.raises(ValueError, match="flip_test is for top-down"):
        CustomModelConfig.from_dict({**base, "family": "yolo_pose", "flip_test": True})
    c = CustomModelConfig.from_dict({**base, "input_size": {"width": 192, "height": 256}})
    assert c.input_size == (192, 256)
