"""One-stage YOLO-pose family (Ultralytics export) on synthetic ONNX graphs."""
import numpy as np
import pytest

from pose_perception.core.custom import ModelMetadataError, build_estimator
from test_custom_common import const_model

IMG_H, IMG_W = 320, 400
RATIO, TOP = 1.6, 64.0         # letterbox of 400x320 into 640x640: 640x512, 64 px top padding


def _people():
    rng = np.random.default_rng(0)
    p1 = np.column_stack([rng.uniform(40, 140, 17), rng.uniform(30, 300, 17)])
    p2 = np.column_stack([rng.uniform(250, 380, 17), rng.uniform(60, 310, 17)])
    return p1, p2


def _to_input(xy):
    return np.column_stack([xy[:, 0] * RATIO, xy[:, 1] * RATIO + TOP])


def _row(kp_img, score, shift=0.0, e2e=False):
    kp = _to_input(kp_img) + shift
    x0, y0 = kp.min(0) - 10
    x1, y1 = kp.max(0) + 10
    vis = np.linspace(0.5, 1.0, 17)
    box = [x0, y0, x1, y1] if e2e else [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
    head = box + [score] + ([0.0] if e2e else [])
    return np.concatenate([head, np.column_stack([kp, vis]).reshape(-1)]).astype(np.float32)


def _output(e2e=False):
    p1, p2 = _people()
    rows = [_row(p1, 0.9, e2e=e2e), _row(p1, 0.8, shift=3.0, e2e=e2e), _row(p2, 0.85, e2e=e2e),
            _row(p2, 0.1, shift=60.0, e2e=e2e), np.zeros(57 if e2e else 56, np.float32)]
    if e2e:       # an NMS-free export has no duplicates
        rows.pop(1)
    return np.stack(rows)          # (N, C)


def _cfg(path, **kw):
    d = {"family": "yolo_pose", "path": str(path), "layout": "coco17", "input_size": 640}
    d.update(kw)
    return d


@pytest.mark.parametrize("transposed", [False, True])
def test_yolo_pose_nms_threshold_and_letterbox(tmp_path, transposed):
    out = _output()
    tensor = out[None] if transposed else out.T[None]          # [1, N, 56] or [1, 56, N]
    path = const_model(tmp_path / "yolov8n-pose.onnx", [1, 3, 640, 640], {"output0": tensor},
                       metadata={"task": "pose", "kpt_shape": "[17, 3]", "imgsz": "[640, 640]"})
    people = build_estimator(_cfg(path)).estimate(np.zeros((IMG_H, IMG_W, 3), np.uint8))
    assert len(people) == 2                     # duplicate suppressed, low score dropped
    p1, p2 = _people()
    assert people[0].score == pytest.approx(0.9) and people[1].score == pytest.approx(0.85)
    assert np.abs(people[0].body.xy - p1).max() < 1e-3
    assert np.abs(people[1].body.xy - p2).max() < 1e-3
    assert np.allclose(people[0].body.score, np.linspace(0.5, 1.0, 17), atol=1e-6)
    x0, y0, x1, y1 = people[0].box
    assert x0 <= p1[:, 0].min() and x1 >= p1[:, 0].max() and y0 <= p1[:, 1].min()


def test_yolo_pose_end_to_end_export(tmp_path):
    path = const_model(tmp_path / "e2e.onnx", [1, 3, 640, 640], {"output0": _output(True)[None]})
    people = build_estimator(_cfg(path)).estimate(np.zeros((IMG_H, IMG_W, 3), np.uint8))
    assert len(people) == 2
    assert np.abs(people[1].body.xy - _people()[1]).max() < 1e-3


def test_yolo_pose_metadata_checked(tmp_path):
    t = _output().T[None]
    path = const_model(tmp_path / "m.onnx", [1, 3, 640, 640], {"output0": t},
                       metadata={"kpt_shape": "[17, 3]"})
    with pytest.raises(ModelMetadataError, match=r"m\.onnx: kpt_shape \[17, 3\].*halpe26"):
        build_estimator(_cfg(path, layout="halpe26"))
    plain = const_model(tmp_path / "plain.onnx", [1, 3, 640, 640], {"output0": t})
    with pytest.raises(ModelMetadataError, match=r"plain\.onnx.*5 \+ 26 keypoints"):
        build_estimator(_cfg(plain, layout="halpe26"))
    with pytest.raises(ModelMetadataError, match="640"):
        build_estimator(_cfg(plain, input_size=[480, 640]))
    sized = const_model(tmp_path / "s.onnx", [1, 3, "h", "w"], {"output0": t},
                        metadata={"imgsz": "[480, 640]"})
    with pytest.raises(ModelMetadataError, match="imgsz"):
        build_estimator(_cfg(sized))


def test_custom_stage_runs_inside_perception(tmp_path):
    """The custom estimator replaces the BlazePose keypoint stage; tracking runs on its people."""
    from pose_perception.core.custom import CustomKeypointStage
    from pose_perception.core.perception import Perception

    path = const_model(tmp_path / "pose.onnx", [1, 3, 640, 640], {"output0": _output().T[None]})
    stage = CustomKeypointStage(build_estimator(_cfg(path)))
    assert stage.provider == "CPUExecutionProvider"
    perception = Perception(keypoints=stage)
    img = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    ids = []
    for i in range(3):
        res = perception.process(img, stamp_s=0.1 * i)
        assert len(res.persons) == 2 and "custom_model" in res.timings_ms
        assert all(p.body.layout == "coco17" for p in res.persons)
        ids.append(sorted(p.track_id for p in res.persons))
    assert ids[-1] == ids[-2] and all(t > 0 for t in ids[-1])


def test_config_switch_selects_the_custom_model_and_lifts_it(tmp_path):
    """`keypoint_model: <yaml>` in the pipeline config (the ROS parameter
    perception.keypoint_model) selects the custom family; its COCO-17 people get 3D from depth."""
    import yaml

    from pose_perception.core.camera import CameraModel
    from pose_perception.core.perception import Perception, PerceptionConfig

    path = const_model(tmp_path / "pose.onnx", [1, 3, 640, 640], {"output0": _output().T[None]})
    cfg_path = tmp_path / "yolo_pose.yaml"
    cfg_path.write_text(yaml.safe_dump(_cfg(path)))
    perception = Perception(PerceptionConfig.from_dict({"keypoint_model": str(cfg_path)}))
    cam = CameraModel(IMG_W, IMG_H, [[300, 0, IMG_W / 2], [0, 300, IMG_H / 2], [0, 0, 1]])
    depth = np.full((IMG_H, IMG_W), 2.0, np.float32)       # a flat scene 2 m away
    res = perception.process(np.zeros((IMG_H, IMG_W, 3), np.uint8), 0.0, depth, cam)
    assert len(res.persons) == 2 and all(p.body.layout == "coco17" for p in res.persons)
    from pose_perception.core.types import SOURCE_DEPTH
    for p in res.persons:     # (random keypoints: implausible bones may be re-placed or dropped)
        measured = p.body.xyz_valid & (p.body.xyz_source == SOURCE_DEPTH)
        assert measured.sum() >= 10
        assert np.all(np.abs(p.body.xyz[measured, 2] - 2.0) < 0.3)  # surface + joint offset
