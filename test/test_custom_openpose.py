"""Bottom-up OpenPose family: heatmaps + part affinity fields for two people, on synthetic ONNX."""
import numpy as np
import pytest

from pose_perception.core.custom import ModelMetadataError, build_estimator
from pose_perception.core.custom.layouts import OPENPOSE_TABLES
from pose_perception.core.layouts import get_layout
from test_custom_common import const_model, gaussian_maps

IN = 368                       # network input 368 x 368, stride 8 -> 46 x 46 maps
IMG_W, IMG_H = 552, 414        # scaled by 2/3 into the input (368 x 276, grey below)
SCALE = IN / IMG_W
CELLS = IN // 8

# a person facing the camera (their right on the image's left), image pixels relative to the neck
TEMPLATE = {
    "nose": (0, -30), "neck": (0, 0), "right_shoulder": (-30, 0), "right_elbow": (-40, 45),
    "right_wrist": (-45, 90), "left_shoulder": (30, 0), "left_elbow": (40, 45),
    "left_wrist": (45, 90), "mid_hip": (0, 100), "right_hip": (-18, 100),
    "right_knee": (-20, 160), "right_ankle": (-22, 220), "left_hip": (18, 100),
    "left_knee": (20, 160), "left_ankle": (22, 220), "right_eye": (-8, -38), "left_eye": (8, -38),
    "right_ear": (-17, -33), "left_ear": (17, -33), "left_big_toe": (32, 236),
    "left_small_toe": (40, 232), "left_heel": (18, 230), "right_big_toe": (-32, 236),
    "right_small_toe": (-40, 232), "right_heel": (-18, 230),
}


def _people(layout):
    names = get_layout(layout).names
    a = {n: (170 + 1.2 * x, 80 + 1.2 * y) for n, (x, y) in TEMPLATE.items()}
    b = {n: (390 + 1.2 * x, 95 + 1.2 * y) for n, (x, y) in TEMPLATE.items()}
    # A reaches into B: A's left wrist ends nearer B's left elbow than B's own wrist is, so
    # grouping by distance would fail; only the PAFs tell.
    a["left_elbow"], a["left_wrist"] = (250.0, 128.0), (385.0, 160.0)
    return [np.array([p[n] for n in names], np.float64) for p in (a, b)]


def _cells(xy):
    """Image pixels -> stride-8 cells (input u = (x + .5) * scale - .5; cell j centre 8j + 3.5)."""
    u = (xy + 0.5) * SCALE - 0.5
    return (u - 3.5) / 8.0


def _maps(layout, people, extra_peak=None):
    limbs, paf_idx, n_paf = OPENPOSE_TABLES[layout]
    n = get_layout(layout).size
    cells = [_cells(p) for p in people]
    hm = np.max([gaussian_maps(c, CELLS, CELLS, sigma=1.0) for c in cells], axis=0)
    if extra_peak is not None:          # a lone part with no limbs: must not become a person
        hm[0] = np.maximum(hm[0], gaussian_maps(np.array([extra_peak]), CELLS, CELLS, 1.0)[0])
    heat = np.concatenate([hm, 1 - hm.max(0, keepdims=True)])          # + background
    paf = np.zeros((n_paf, CELLS, CELLS), np.float32)
    cnt = np.zeros((len(limbs), CELLS, CELLS), np.float32)
    ys, xs = np.mgrid[0:CELLS, 0:CELLS]
    for c in cells:
        for li, ((ja, jb), (ix, iy)) in enumerate(zip(limbs, paf_idx)):
            v = c[jb] - c[ja]
            length = np.linalg.norm(v)
            u = v / length
            dx, dy = xs - c[ja, 0], ys - c[ja, 1]
            along, perp = dx * u[0] + dy * u[1], np.abs(dx * u[1] - dy * u[0])
            m = (along >= -1) & (along <= length + 1) & (perp <= 1.0)
            paf[ix][m] += u[0]
            paf[iy][m] += u[1]
            cnt[li][m] += 1
    for li, (ix, iy) in enumerate(paf_idx):
        paf[ix] /= np.maximum(cnt[li], 1)
        paf[iy] /= np.maximum(cnt[li], 1)
    assert heat.shape[0] == n + 1
    return heat.astype(np.float32), paf


def _cfg(path, layout):
    return {"family": "openpose", "path": str(path), "layout": layout, "input_size": [IN, IN]}


@pytest.mark.parametrize("layout,concat", [("openpose18", False), ("body25", True)])
def test_openpose_groups_two_people(tmp_path, layout, concat):
    people = _people(layout)
    le, lw = get_layout(layout).index("left_elbow"), get_layout(layout).index("left_wrist")
    a, b = people
    assert np.linalg.norm(a[lw] - b[le]) < np.linalg.norm(b[lw] - b[le])
    heat, paf = _maps(layout, people, extra_peak=(40.0, 40.0))
    outs = ({"net_output": np.concatenate([heat, paf])[None]} if concat
            else {"pafs": paf[None], "heatmaps": heat[None]})
    path = const_model(tmp_path / f"{layout}.onnx", [1, 3, IN, IN], outs)
    est = build_estimator(_cfg(path, layout))
    found = est.estimate(np.zeros((IMG_H, IMG_W, 3), np.uint8))
    assert len(found) == 2
    found.sort(key=lambda p: p.body.xy[1, 0])          # by neck x
    for p, truth in zip(found, people):
        assert p.body.layout == layout
        assert np.all(p.body.score > 0.5)
        assert np.abs(p.body.xy - truth).max() < 1.5, np.abs(p.body.xy - truth).max(axis=1)
        assert p.box[0] <= truth[:, 0].min() + 1.5 and p.box[2] >= truth[:, 0].max() - 1.5


def test_openpose_missing_limb_leaves_a_gap(tmp_path):
    layout = "openpose18"
    people = _people(layout)
    heat, paf = _maps(layout, people)
    heat[7] = 0.0             # no left-wrist peaks at all
    path = const_model(tmp_path / "m.onnx", [1, 3, IN, IN], {"h": heat[None], "p": paf[None]})
    found = build_estimator(_cfg(path, layout)).estimate(np.zeros((IMG_H, IMG_W, 3), np.uint8))
    assert len(found) == 2
    for p in found:
        assert np.isnan(p.body.xy[7]).all() and p.body.score[7] == 0
        assert np.isfinite(p.body.xy[4]).all()


def test_openpose_channel_counts_checked(tmp_path):
    heat, paf = _maps("openpose18", _people("openpose18"))
    path = const_model(tmp_path / "coco.onnx", [1, 3, IN, IN], {"h": heat[None], "p": paf[None]})
    with pytest.raises(ModelMetadataError, match=r"coco\.onnx.*26 heatmap and 52 PAF"):
        build_estimator(_cfg(path, "body25"))
    with pytest.raises(ValueError, match="openpose18 or body25"):
        build_estimator(_cfg(path, "coco17"))
