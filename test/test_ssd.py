"""SSD anchors, decoding, weighted NMS and a detector run end to end on a synthetic model."""
import math

import numpy as np
import pytest

from _onnx_fakes import constant_model
from pose_perception.core import ssd
from pose_perception.core.crops import CropSampler, transform_points
from pose_perception.core.inference import OnnxModel
from pose_perception.core.types import RotatedRect


@pytest.mark.parametrize("opts,n,first", [
    (ssd.POSE_ANCHORS, 2254, 0.5 / 28), (ssd.FACE_SHORT_ANCHORS, 896, 0.5 / 16),
    (ssd.FACE_FULL_ANCHORS, 2304, 0.5 / 48), (ssd.PALM_ANCHORS, 2016, 0.5 / 24)])
def test_anchor_counts_and_layout(opts, n, first):
    a = ssd.generate_anchors(opts)
    assert a.shape == (n, 4)
    assert a[0, :2] == pytest.approx([first, first])
    assert np.all(a[:, 2:] == 1.0)                            # fixed anchor size
    assert 0 < a[:, :2].min() and a[:, :2].max() < 1


def test_two_anchors_per_cell_then_row_major():
    a = ssd.generate_anchors(ssd.FACE_SHORT_ANCHORS)
    assert np.array_equal(a[0], a[1])                        # two anchors per cell
    assert a[2, 0] > a[0, 0] and a[2, 1] == a[0, 1]          # then the next column
    assert a[512, 0] == pytest.approx(0.5 / 8)               # stride-16 layers start at 512


def test_sigmoid_clip():
    assert ssd.sigmoid_clip(np.array([0.0]))[0] == pytest.approx(0.5)
    s = ssd.sigmoid_clip(np.array([-1e6, 1e6]))
    assert s[0] == pytest.approx(1 / (1 + math.exp(100))) and s[1] == pytest.approx(1.0)


def test_decode_offsets_relative_to_anchor():
    anchors = np.array([[0.25, 0.5, 1, 1]], np.float32)
    raw = np.array([[12.8, -6.4, 32, 64, 1.28, 2.56]], np.float32)    # input size 128
    boxes, kps = ssd.decode(raw, anchors, 128, 1)
    cx, cy, w, h = 0.25 + 0.1, 0.5 - 0.05, 0.25, 0.5
    assert boxes[0] == pytest.approx([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    assert kps[0, 0] == pytest.approx([0.26, 0.52])


def test_weighted_nms_averages_overlaps_and_keeps_separate():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.3, 0.8], np.float32)
    kps = np.array([[[0, 0]], [[4, 4]], [[55, 55]]], np.float32)
    b, s, k = ssd.weighted_nms(boxes, scores, kps, 0.3)
    assert s.tolist() == pytest.approx([0.9, 0.8])
    assert b[0] == pytest.approx([0.25, 0, 10.25, 10])            # weights 0.75 / 0.25
    assert k[0, 0] == pytest.approx([1.0, 1.0]) and k[1, 0] == pytest.approx([55, 55])
    b, s, k = ssd.weighted_nms(boxes[:0], scores[:0], kps[:0])
    assert b.shape == (0, 4) and k.shape == (0, 1, 2)
    assert len(ssd.weighted_nms(boxes, scores, kps, 0.3, max_detections=1)[1]) == 1


@pytest.fixture(scope="module")
def fake_face_detector(tmp_path_factory):
    """A face-short-range-shaped model that always 'detects' one face at anchor 100."""
    anchors = ssd.generate_anchors(ssd.FACE_SHORT_ANCHORS)
    reg = np.zeros((1, 896, 16), np.float32)
    logits = np.full((1, 896, 1), -8.0, np.float32)
    logits[0, 100] = 3.0
    reg[0, 100, :4] = [0, 0, 20, 30]                 # box 20 x 30 input px at the anchor
    reg[0, 100, 4:6] = [-5, -4]                      # first keypoint
    path = constant_model(tmp_path_factory.mktemp("det") / "face.onnx", [1, 128, 128, 3],
                          {"regressors": reg, "classificators": logits})
    model = OnnxModel(path, providers=("cpu",), threads=1)
    return ssd.SsdDetector(model, ssd.FACE_SHORT_DETECTOR), anchors[100, :2] * 128


def test_detector_undoes_letterbox(fake_face_detector):
    det, centre_in = fake_face_detector
    img = np.zeros((480, 640, 3), np.uint8)
    found = det.detect(CropSampler(img))
    assert len(found) == 1 and found[0].score == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-5)
    back = ssd.letterbox_matrix(640, 480, 128)
    expect_c = transform_points(back, centre_in)
    s = 640 / 128
    box = found[0].box
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    assert centre == pytest.approx(tuple(expect_c), abs=1e-3)
    assert (box[2] - box[0], box[3] - box[1]) == pytest.approx((20 * s, 30 * s), rel=1e-4)
    kp = transform_points(back, centre_in + [-5, -4])
    assert found[0].keypoints[0] == pytest.approx(kp, abs=1e-3)
    assert det.detect(CropSampler(img), min_score=0.99) == []


def test_detector_in_rotated_roi(fake_face_detector):
    det, centre_in = fake_face_detector
    img = np.zeros((100, 100, 3), np.uint8)
    roi = RotatedRect(50, 50, 64, 64, math.pi / 2)
    found = det.detect(CropSampler(img), roi)
    # crop point -> image: rotated by 90 degrees about the roi centre
    u = (centre_in + [-5, -4]) / 128 - 0.5
    expect = np.array([50 - u[1] * 64, 50 + u[0] * 64])
    assert found[0].keypoints[0] == pytest.approx(expect, abs=1e-3)
    w, h = found[0].box[2] - found[0].box[0], found[0].box[3] - found[0].box[1]
    assert (w, h) == pytest.approx((15, 10), abs=1e-3)       # box turned by 90 degrees


def test_tile_rects():
    t = ssd.tile_rects(640, 480)
    assert [(r.cx, r.cy, r.width) for r in t] == [(240, 240, 480), (400, 240, 480)]
    assert ssd.tile_rects(500, 500) == []
    t = ssd.tile_rects(100, 1000)                            # portrait, very elongated
    assert len(t) == 3 and t[0].cy - t[0].width / 2 == 0 and t[-1].cy + t[-1].width / 2 == 1000
    assert len(ssd.tile_rects(2, 900)) == 3
