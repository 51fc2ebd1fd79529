"""SimCC family (RTMPose exports) on synthetic ONNX graphs."""
import numpy as np
import pytest

from pose_perception.core.custom import ModelMetadataError, build_estimator
from pose_perception.core.custom.layouts import flip_permutation
from test_custom_common import const_model, mmpose_forward

W_IN, H_IN, R = 192, 256, 2.0
BOX = (200.0, 100.0, 330.0, 420.0)


def _vectors(pos, n_bins, peak, sigma=3.0):
    bins = np.arange(n_bins)
    return (peak * np.exp(-(bins[None] - np.asarray(pos)[:, None]) ** 2 / (2 * sigma ** 2))
            ).astype(np.float32)


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    truth = np.column_stack([rng.uniform(210, 320, 17), rng.uniform(110, 410, 17)])
    return truth, mmpose_forward(truth, BOX, (W_IN, H_IN))


def _cfg(path, **kw):
    d = {"family": "simcc", "path": str(path), "layout": "coco17", "input_size": [W_IN, H_IN],
         "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}
    d.update(kw)
    return d


def _image(marker=False):
    img = np.full((480, 640, 3), 90, np.uint8)
    if marker:   # normalised red > 1 left of the box centre (m ~ 2), < 0 right of it
        img[:, :, 0] = 0
        img[:, : int((BOX[0] + BOX[2]) / 2), 0] = 255
    return img


@pytest.mark.parametrize("mode,expected", [("min", 0.6), ("mean", 0.75)])
def test_simcc_recovers_keypoints_and_scores(tmp_path, mode, expected):
    truth, uv = _setup()
    sx = _vectors(uv[:, 0] * R, int(W_IN * R), 0.9)
    sy = _vectors(uv[:, 1] * R, int(H_IN * R), 0.6)
    path = const_model(tmp_path / "rtmpose.onnx", [1, 3, H_IN, W_IN],
                       {"simcc_x": sx[None], "simcc_y": sy[None]})
    p = build_estimator(_cfg(path, simcc_score=mode)).estimate(_image(), np.array([BOX]))[0]
    scale = (BOX[3] - BOX[1]) * 1.25 / H_IN              # image pixels per input pixel
    assert np.abs(p.body.xy - truth).max() <= 0.25 * scale + 1e-6   # half a bin
    assert np.allclose(p.body.score, expected, atol=0.01)


def test_simcc_outputs_found_by_length_when_unnamed(tmp_path):
    truth, uv = _setup(2)
    sx = _vectors(uv[:, 0] * R, int(W_IN * R), 1.0)
    sy = _vectors(uv[:, 1] * R, int(H_IN * R), 1.0)
    path = const_model(tmp_path / "m.onnx", [1, 3, H_IN, W_IN], {"b": sy[None], "a": sx[None]})
    p = build_estimator(_cfg(path)).estimate(_image(), np.array([BOX]))[0]
    assert np.abs(p.body.xy - truth).max() < 1.0


def test_simcc_flip_test(tmp_path):
    truth, uv = _setup(4)
    perm = flip_permutation("coco17")
    sx_a = _vectors(uv[:, 0] * R, int(W_IN * R), 1.0)
    sy_a = _vectors(uv[:, 1] * R, int(H_IN * R), 1.0)
    sx_b = _vectors((W_IN - 1 - uv[perm, 0]) * R, int(W_IN * R), 1.0)
    sy_b = _vectors(uv[perm, 1] * R, int(H_IN * R), 1.0)
    # the marker of the normalised input is (255 - 123.675) / 58.395 = 2.25 for the crop and
    # -2.12 for its mirror: pre-scale A and B so that A*m + B*(1-m) gives the intended vectors
    m1, m0 = (255 - 123.675) / 58.395, (0 - 123.675) / 58.395
    det = m1 * (1 - m0) - m0 * (1 - m1)

    def mix(a, b):      # solve A*m1 + B*(1-m1) = a and A*m0 + B*(1-m0) = b
        return ((a * (1 - m0) - b * (1 - m1)) / det, (m1 * b - m0 * a) / det)

    path = const_model(tmp_path / "flip.onnx", [1, 3, H_IN, W_IN],
                       {"simcc_x": tuple(v[None] for v in mix(sx_a, sx_b)),
                        "simcc_y": tuple(v[None] for v in mix(sy_a, sy_b))})
    p = build_estimator(_cfg(path, flip_test=True)).estimate(_image(True), np.array([BOX]))[0]
    assert np.abs(p.body.xy - truth).max() < 1.0
    assert np.allclose(p.body.score, 1.0, atol=0.02)


def test_simcc_bin_count_checked(tmp_path):
    path = const_model(tmp_path / "r15.onnx", [1, 3, H_IN, W_IN],
                       {"simcc_x": np.zeros((1, 17, 288), np.float32),
                        "simcc_y": np.zeros((1, 17, 384), np.float32)})
    with pytest.raises(ModelMetadataError, match=r"r15\.onnx.*288 bins.*split_ratio"):
        build_estimator(_cfg(path))
    build_estimator(_cfg(path, split_ratio=1.5))      # the right ratio loads
    with pytest.raises(ModelMetadataError, match="17 keypoints but the layout has 26"):
        build_estimator(_cfg(path, split_ratio=1.5, layout="halpe26"))
