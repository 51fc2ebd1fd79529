"""Face-landmark families (68 / 98 points; heatmap and direct regression) on synthetic ONNX."""
import numpy as np
import pytest

from pose_perception.core.custom import FaceLandmarks, ModelMetadataError, build_estimator
from pose_perception.core.custom.layouts import flip_permutation
from test_custom_common import const_model, gaussian_maps, mmpose_forward

FACE_BOX = (300.0, 120.0, 400.0, 250.0)
NORM = {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}


def _truth(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(305, 395, n), rng.uniform(125, 245, n)])


def _image(marker=False):
    img = np.full((480, 640, 3), 127, np.uint8)
    if marker:      # normalised red +1 left of the face centre (crop), -1 right (mirror)
        img[:, :, 0] = 0
        img[:, :350, 0] = 255
    return img


def _ab(a, b):
    """Constants (A, B) of ``A*m + B*(1-m)`` giving ``a`` for the crop (m = +1) and ``b`` for its
    mirror (m = -1): A = a, B = (a + b) / 2."""
    return a, (a + b) / 2


def test_face_regression_normalised_coordinates(tmp_path):
    truth = _truth(68)
    uv = mmpose_forward(truth, FACE_BOX, (112, 112))
    out = (uv / 112.0).reshape(1, 136)
    path = const_model(tmp_path / "pfld.onnx", [1, 3, 112, 112], {"landmarks": out})
    est = build_estimator({"family": "face_regression", "path": str(path), "layout": "ibug68",
                           "input_size": [112, 112], **NORM})
    faces = est.estimate(_image(), boxes=np.array([FACE_BOX]), box_scores=np.array([0.7]))
    assert len(faces) == 1 and isinstance(faces[0], FaceLandmarks)
    f = faces[0]
    assert f.keypoints.layout == "ibug68" and f.score == pytest.approx(0.7)
    assert np.abs(f.keypoints.xy - truth).max() < 0.01
    assert np.all(f.keypoints.score == 1.0)
    assert f.ibug68() is f.keypoints


def test_face_regression_pixels_xyz_scores_and_flip(tmp_path):
    truth = _truth(68, 1)
    perm = flip_permutation("ibug68")
    uv = mmpose_forward(truth, FACE_BOX, (112, 112))
    uv_f = np.column_stack([111 - uv[perm, 0], uv[perm, 1]])
    xyz = lambda p: np.column_stack([p, np.zeros(68)]).reshape(1, -1)   # noqa: E731
    scores = np.linspace(0.2, 0.9, 68).reshape(1, 68)
    path = const_model(tmp_path / "reg3.onnx", [1, 3, 112, 112],
                       {"pts": _ab(xyz(uv), xyz(uv_f)), "conf": (scores, scores)})
    est = build_estimator({"family": "face_regression", "path": str(path), "layout": "ibug68",
                           "input_size": 112, "regression_units": "pixels",
                           "score_output": "conf", "flip_test": True, **NORM})
    f = est.estimate(_image(marker=True), boxes=np.array([FACE_BOX]))[0]
    assert np.abs(f.keypoints.xy - truth).max() < 0.01
    assert np.allclose(f.keypoints.score, (scores[0] + scores[0][perm]) / 2, atol=1e-6)


def test_face_heatmap_wflw98_with_flip_test(tmp_path):
    truth = _truth(98, 2)
    perm = flip_permutation("wflw98")
    uv = mmpose_forward(truth, FACE_BOX, (256, 256))
    a = gaussian_maps(uv / 4.0, 64, 64)
    b = gaussian_maps(np.column_stack([255 - uv[perm, 0], uv[perm, 1]]) / 4.0, 64, 64)
    path = const_model(tmp_path / "hrnetv2_w18_wflw.onnx", [1, 3, 256, 256],
                       {"hm": _ab(a[None], b[None])})
    est = build_estimator({"family": "face_heatmap", "path": str(path), "layout": "wflw98",
                           "input_size": [256, 256], "flip_test": True, **NORM})
    f = est.estimate(_image(marker=True), boxes=np.array([FACE_BOX]))[0]
    assert np.abs(f.keypoints.xy - truth).max() < 1.0
    assert f.ibug68().layout == "ibug68" and len(f.ibug68()) == 68


def test_face_output_size_checked(tmp_path):
    path = const_model(tmp_path / "wflw_reg.onnx", [1, 3, 112, 112],
                       {"landmarks": np.zeros((1, 196), np.float32)})
    with pytest.raises(ModelMetadataError, match=r"wflw_reg\.onnx.*136 \(x, y\).*68 points"):
        build_estimator({"family": "face_regression", "path": str(path), "layout": "ibug68",
                         "input_size": 112, **NORM})
    est = build_estimator({"family": "face_regression", "path": str(path), "layout": "wflw98",
                           "input_size": 112, **NORM})
    assert est.estimate(_image(), boxes=np.array([FACE_BOX]))[0].keypoints.layout == "wflw98"
