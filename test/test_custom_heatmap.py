"""Top-down heatmap family (HRNet / SimpleBaseline / ViTPose exports) on synthetic ONNX graphs."""
import numpy as np
import pytest

from pose_perception.core.custom import ModelMetadataError, build_estimator
from pose_perception.core.custom.heatmap import heatmap_maxima, refine_dark, refine_quarter
from pose_perception.core.custom.layouts import flip_permutation
from test_custom_common import const_model, gaussian_maps, mmpose_forward, mmpose_inverse

W_IN, H_IN, W_HM, H_HM = 192, 256, 48, 64
BOX = (200.0, 100.0, 330.0, 420.0)
NORM = {"mean": [0, 0, 0], "std": [255, 255, 255]}


def _truth(seed=0, box=BOX, n=17):
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = box
    return np.column_stack([rng.uniform(x0 + 5, x1 - 5, n), rng.uniform(y0 + 5, y1 - 5, n)])


def _image(marker=False):
    img = np.full((480, 640, 3), 90, np.uint8)
    if marker:      # red left of the box centre, none right of it: crop -> m=1, mirror -> m=0
        img[:, :, 0] = 0
        img[:, : int((BOX[0] + BOX[2]) / 2), 0] = 255
    return img


def _cfg(path, **kw):
    d = {"family": "heatmap", "path": str(path), "layout": "coco17",
         "input_size": [W_IN, H_IN], **NORM}
    d.update(kw)
    return d


def test_dark_and_quarter_refinement_recover_subpixel_peaks():
    rng = np.random.default_rng(1)
    centers = np.column_stack([rng.uniform(4, 44, 17), rng.uniform(4, 60, 17)])
    hm = gaussian_maps(centers, H_HM, W_HM, sigma=2.0)
    xy, vals = heatmap_maxima(hm)
    assert np.allclose(vals, 1.0, atol=0.15)
    err_arg = np.abs(xy - centers).max()
    err_dark = np.abs(refine_dark(hm, xy, 11) - centers).max()
    err_q = np.abs(refine_quarter(hm, xy) - centers).max()
    assert err_dark < 0.05
    assert err_q <= 0.5 and err_arg <= 0.5 + 1e-9
    assert np.abs(refine_quarter(hm, xy) - centers).mean() < np.abs(xy - centers).mean()


@pytest.mark.parametrize("udp", [False, True])
def test_heatmap_model_recovers_keypoints_through_the_crop(tmp_path, udp):
    truth = _truth()
    uv = mmpose_forward(truth, BOX, (W_IN, H_IN), udp=udp)
    if udp:
        cells = uv * [(W_HM - 1) / (W_IN - 1), (H_HM - 1) / (H_IN - 1)]
    else:
        cells = uv * W_HM / W_IN
    path = const_model(tmp_path / "hrnet.onnx", [1, 3, H_IN, W_IN],
                       {"heatmaps": gaussian_maps(cells, H_HM, W_HM)[None]})
    est = build_estimator(_cfg(path, udp=udp))
    people = est.estimate(_image(), boxes=np.array([BOX]), box_scores=np.array([0.8]))
    assert len(people) == 1
    p = people[0]
    assert p.body.layout == "coco17" and p.detector_score == pytest.approx(0.8)
    assert np.abs(p.body.xy - truth).max() < 1.0
    assert p.score > 0.9 and np.all(p.body.score <= 1.0)


def test_quarter_refinement_within_a_cell(tmp_path):
    truth = _truth(3)
    cells = mmpose_forward(truth, BOX, (W_IN, H_IN)) * W_HM / W_IN
    path = const_model(tmp_path / "m.onnx", [1, 3, H_IN, W_IN],
                       {"out": gaussian_maps(cells, H_HM, W_HM)[None]})
    p = build_estimator(_cfg(path, refine="quarter")).estimate(_image(), np.array([BOX]))[0]
    cell_px = (BOX[3] - BOX[1]) * 1.25 / H_HM        # image pixels per heatmap cell
    assert np.abs(p.body.xy - truth).max() < 0.5 * cell_px


def test_dynamic_batch_runs_several_boxes(tmp_path):
    truth = _truth()
    cells = mmpose_forward(truth, BOX, (W_IN, H_IN)) * W_HM / W_IN
    path = const_model(tmp_path / "m.onnx", ["N", 3, H_IN, W_IN],
                       {"hm": gaussian_maps(cells, H_HM, W_HM)[None]})
    box2 = (20.0, 50.0, 140.0, 300.0)
    people = build_estimator(_cfg(path)).estimate(_image(), np.array([BOX, box2]))
    assert len(people) == 2
    assert np.abs(people[0].body.xy - truth).max() < 1.0
    expected2 = mmpose_inverse(cells * W_IN / W_HM, box2, (W_IN, H_IN))
    assert np.abs(people[1].body.xy - expected2).max() < 1.0


def test_flip_test_maps_the_mirrored_heatmaps_back(tmp_path):
    truth = _truth(5)
    perm = flip_permutation("coco17")
    uv = mmpose_forward(truth, BOX, (W_IN, H_IN))
    a = gaussian_maps(uv * W_HM / W_IN, H_HM, W_HM)
    # what the network sees in the mirrored crop: joint j is the mirror of joint perm[j]
    uv_f = np.column_stack([W_IN - 1 - uv[perm, 0], uv[perm, 1]])
    b = gaussian_maps(uv_f * W_HM / W_IN, H_HM, W_HM)
    good = const_model(tmp_path / "good.onnx", [1, 3, H_IN, W_IN], {"hm": (a[None], b[None])})
    est = build_estimator(_cfg(good, flip_test=True))
    p = est.estimate(_image(marker=True), np.array([BOX]))[0]
    assert np.abs(p.body.xy - truth).max() < 1.0
    # a network that ignored the flip (same maps for both) is pulled off by the averaging
    bad = const_model(tmp_path / "bad.onnx", [1, 3, H_IN, W_IN], {"hm": (a[None], a[None])})
    q = build_estimator(_cfg(bad, flip_test=True)).estimate(_image(marker=True),
                                                            np.array([BOX]))[0]
    assert np.abs(q.body.xy - truth).max() > 5.0
    # the marker really selects: without flip test the 'good' model returns the A maps
    r = build_estimator(_cfg(good)).estimate(_image(marker=True), np.array([BOX]))[0]
    assert np.abs(r.body.xy - truth).max() < 1.0


def test_nhwc_and_last_of_stacked_outputs(tmp_path):
    truth = _truth(7)
    cells = mmpose_forward(truth, BOX, (W_IN, H_IN)) * W_HM / W_IN
    hm = gaussian_maps(cells, H_HM, W_HM)
    wrong = gaussian_maps(cells[::-1], H_HM, W_HM)
    path = const_model(tmp_path / "hourglass.onnx", [1, H_IN, W_IN, 3],
                       {"stage1": wrong.transpose(1, 2, 0)[None],
                        "stage2": hm.transpose(1, 2, 0)[None]})
    p = build_estimator(_cfg(path, input_layout="NHWC")).estimate(_image(), np.array([BOX]))[0]
    assert np.abs(p.body.xy - truth).max() < 1.0


def test_full_image_box_when_no_detector(tmp_path):
    path = const_model(tmp_path / "m.onnx", [1, 3, H_IN, W_IN],
                       {"hm": gaussian_maps(np.full((17, 2), 20.0), H_HM, W_HM)[None]})
    people = build_estimator(_cfg(path)).estimate(_image())
    assert len(people) == 1
    assert np.allclose(people[0].box, [0, 0, 639, 479])


def test_metadata_errors_name_file_and_mismatch(tmp_path):
    hm16 = np.zeros((1, 16, H_HM, W_HM), np.float32)
    p = const_model(tmp_path / "k16.onnx", [1, 3, H_IN, W_IN], {"hm": hm16})
    with pytest.raises(ModelMetadataError, match=r"k16\.onnx.*16 heatmaps.*17 keypoints"):
        build_estimator(_cfg(p))
    hm17 = np.zeros((1, 17, H_HM, W_HM), np.float32)
    p = const_model(tmp_path / "sq.onnx", [1, 3, 256, 256], {"hm": hm17})
    with pytest.raises(ModelMetadataError, match=r"sq\.onnx.*width 256.*\[192, 256\]"):
        build_estimator(_cfg(p))
    p = const_model(tmp_path / "ok.onnx", [1, 3, H_IN, W_IN], {"hm": hm17})
    with pytest.raises(ModelMetadataError, match="normalisation"):
        build_estimator({k: v for k, v in _cfg(p).items() if k not in ("mean", "std")})
    with pytest.raises(ModelMetadataError, match="channels"):
        build_estimator(_cfg(p, input_layout="NHWC"))
    p = const_model(tmp_path / "dyn.onnx", [1, 3, "H", "W"], {"hm": hm17})
    with pytest.raises(ModelMetadataError, match="different strides"):
        build_estimator(_cfg(p, input_size=[W_IN, 192]))
    with pytest.raises(ModelMetadataError, match=r"dyn\.onnx: the model's input size is dynamic"):
        build_estimator({k: v for k, v in _cfg(p).items() if k != "input_size"})
    with pytest.raises(ValueError, match="unknown keypoint layout"):
        build_estimator(_cfg(p, layout="coco18"))
    with pytest.raises(FileNotFoundError):
        build_estimator(_cfg(tmp_path / "missing.onnx"))
