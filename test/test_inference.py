"""OnnxModel: provider selection and fallback, shape checks, output lookup, clear load errors."""
import logging

import numpy as np
import pytest

from _onnx_fakes import ProviderProxy, affine_model, constant_model
from pose_perception.core import inference, onnx_rewrites
from pose_perception.core.inference import (GPU_PROVIDERS, ModelLoadError, OnnxModel,
                                            provider_name, select_providers)

ort = pytest.importorskip("onnxruntime")
HAS_GPU = bool(set(ort.get_available_providers()) & GPU_PROVIDERS)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "fake.onnx"
    return constant_model(path, ["batch", 8, 8, 3], {
        "scores": np.full((1, 10, 1), 0.25), "boxes": np.arange(40).reshape(1, 10, 4)})


def test_provider_names():
    assert provider_name("cuda") == "CUDAExecutionProvider"
    assert provider_name("TensorRT") == "TensorrtExecutionProvider"
    assert provider_name("CPUExecutionProvider") == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="unknown execution provider"):
        provider_name("quantum")


def test_select_providers_keeps_order_and_falls_back_to_cpu():
    cpu_only = ["CPUExecutionProvider"]
    both = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(("tensorrt", "cuda", "cpu"), cpu_only) == cpu_only
    assert select_providers(("cuda", "tensorrt"), both) == [
        "CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(("cuda",), ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers((), cpu_only) == cpu_only


def test_default_threads_bounded():
    assert 1 <= inference.default_threads() <= inference.MAX_DEFAULT_THREADS


@pytest.mark.parametrize("cores, light", [(2, 1), (4, 1), (8, None), (16, None)])
def test_model_threads_by_core_count(monkeypatch, cores, light):
    """On few cores (threads do not spin) every model but the body and hand landmark models
    gets one intra-op thread; on more cores every model gets ``threads``."""
    from pose_perception.core import keypoint_config as kc
    monkeypatch.setattr(kc, "usable_cores", lambda: cores)
    cfg = kc.KeypointConfig()
    for name in ("pose_landmark_full", "hand_landmark_full"):
        assert cfg.model_threads(name) is None                   # the wrapper's default
    for name in ("face_landmark", "iris_landmark", "pose_detection", "person_detection",
                 "face_detection_short_range", "gesture_embedder"):
        assert cfg.model_threads(name) == light
    cfg = kc.KeypointConfig(threads=3)
    assert cfg.model_threads("pose_landmark_full") == 3
    assert cfg.model_threads("face_landmark") == (1 if cores <= 4 else 3)
    cfg = kc.KeypointConfig(threads=3, light_model_threads=2)
    assert cfg.model_threads("face_landmark") == 2 and cfg.model_threads("hand_landmark_full") == 3
    with pytest.raises(ValueError, match="light_model_threads"):
        kc.KeypointConfig(light_model_threads=-1)


def test_runs_and_reports_provider(fake):
    m = OnnxModel(fake, providers=("cpu",), threads=1)
    assert m.provider == "CPUExecutionProvider"
    assert m.dynamic_batch and m.input_shape == (None, 8, 8, 3)
    scores, boxes = m.run(np.ones((2, 8, 8, 3), np.float32))
    assert scores.shape == (1, 10, 1) and np.allclose(scores, 0.25)
    assert np.array_equal(boxes[0, 3], [12, 13, 14, 15])


@pytest.mark.skipif(HAS_GPU, reason="a GPU provider is available here")
def test_gpu_request_warns_only_when_a_gpu_build_fails(fake, caplog, monkeypatch):
    """issue 17, defect 7: a CPU-only onnxruntime build is no failure (debug only; the node says
    it once, as info); a GPU provider the build offers but that does not start is warned about,
    once per process."""
    import onnxruntime as ort
    monkeypatch.setattr(inference, "_FALLBACKS_WARNED", set())
    monkeypatch.setattr(inference, "_FAILED_PROVIDERS", set())

    def warnings_of(available):
        monkeypatch.setattr(ort, "get_available_providers", lambda: list(available))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pose_perception.core.inference"):
            m = OnnxModel(fake, providers=("tensorrt", "cuda", "cpu"), threads=1)
        assert m.provider == "CPUExecutionProvider"
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    assert warnings_of(["AzureExecutionProvider", "CPUExecutionProvider"]) == []
    if HAS_GPU:
        return      # here a GPU provider would start: no failure to provoke
    gpu_build = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    warned = warnings_of(gpu_build)
    assert warned and any("running on CPUExecutionProvider" in w for w in warned), warned
    assert warnings_of(gpu_build) == []                               # once per process


def test_gpu_fallback_note_for_the_node():
    from pose_perception.core.inference import gpu_fallback_note
    cpu_build = ["AzureExecutionProvider", "CPUExecutionProvider"]
    level, text = gpu_fallback_note(["tensorrt", "cuda", "cpu"], "CPUExecutionProvider",
                                    cpu_build)
    assert level == "info" and "no GPU support" in text
    level, text = gpu_fallback_note(["cuda", "cpu"], "CPUExecutionProvider",
                                    ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert level == "warning" and "CUDAExecutionProvider installed" in text
    assert gpu_fallback_note(["cpu"], "CPUExecutionProvider", cpu_build) is None
    assert gpu_fallback_note(["cuda"], "CUDAExecutionProvider", ["CUDAExecutionProvider"]) is None


@pytest.mark.skipif(HAS_GPU, reason="a GPU provider is available here")
def test_require_gpu_raises_clearly(fake):
    with pytest.raises(RuntimeError, match="GPU execution provider is required"):
        OnnxModel(fake, providers=("cuda", "cpu"), require_gpu=True, threads=1)


def test_output_lookup_by_shape_and_name(fake):
    m = OnnxModel(fake, providers=("cpu",), threads=1, warmup=False)
    assert m.find_output(shape=(None, 10, 4)) == m.output_names.index("boxes")
    assert m.find_output(where=lambda s: s[-1] == 1) == m.output_names.index("scores")
    assert m.find_output(name="scores") == m.output_names.index("scores")
    with pytest.raises(ModelLoadError, match="2 outputs match"):
        m.find_output(shape=(1, 10, None))
    with pytest.raises(ModelLoadError, match="no output named"):
        m.find_output(name="nope")


def test_shape_checks_at_load(fake):
    OnnxModel(fake, providers=("cpu",), input_shape=(None, 8, 8, 3),
              output_shapes=[(1, 10, 4), (1, 10, 1)], warmup=False)
    with pytest.raises(ModelLoadError, match=r"input shape .* does not match"):
        OnnxModel(fake, providers=("cpu",), input_shape=(1, 256, 256, 3), warmup=False)
    with pytest.raises(ModelLoadError, match="no output of shape"):
        OnnxModel(fake, providers=("cpu",), output_shapes=[(1, 39, 5)], warmup=False)


def test_bad_and_missing_model_files(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match="could not load ONNX model"):
        OnnxModel(bad, providers=("cpu",))
    with pytest.raises(FileNotFoundError):
        OnnxModel(tmp_path / "does_not_exist.onnx", providers=("cpu",))


def test_unused_outputs_pruned(fake):
    pytest.importorskip("onnx")
    m = OnnxModel(fake, providers=("cpu",), threads=1,
                  drop_outputs=lambda name, shape: name == "boxes")
    assert m.output_names == ["scores"]
    (scores,) = m.run(np.zeros((1, 8, 8, 3), np.float32))
    assert np.allclose(scores, 0.25)
    assert m.rewrites == ["1 unused output pruned"]
    assert onnx_rewrites.session_model(m.path, lambda n, s: False) == (None, [])


def test_tensorrt_profile_covers_every_batch(tmp_path, fake):
    pytest.importorskip("onnx")
    dyn = affine_model(tmp_path / "dyn.onnx", 1.0, 0.0, size=8)
    assert inference.trt_batch_profile(dyn, 4) == {
        "trt_profile_min_shapes": "input:1x8", "trt_profile_opt_shapes": "input:1x8",
        "trt_profile_max_shapes": "input:4x8"}
    assert inference.trt_batch_profile(dyn, None) == {}
    assert inference.trt_batch_profile(fake, 4) == {
        "trt_profile_min_shapes": "input:1x8x8x3", "trt_profile_opt_shapes": "input:1x8x8x3",
        "trt_profile_max_shapes": "input:4x8x8x3"}
    fixed = constant_model(tmp_path / "fixed.onnx", [1, 8, 8, 3], {"y": np.zeros(2)})
    assert inference.trt_batch_profile(fixed, 4) == {}


def test_gpu_warms_up_every_batch_size(tmp_path, monkeypatch):
    """On a GPU, batches 1..max_batch are run at start (no cuDNN search or engine build when a
    second person appears); on CPU only batch 1."""
    pytest.importorskip("onnx")
    dyn = affine_model(tmp_path / "dyn.onnx", 1.0, 0.0, size=8)
    batches = []
    monkeypatch.setattr(OnnxModel, "warmup", lambda self, batch=1: batches.append(batch))
    monkeypatch.setattr(inference, "_FAILED_PROVIDERS", set())
    OnnxModel(dyn, providers=("cpu",), threads=1, max_batch=3)
    assert batches == [1]
    batches.clear()
    monkeypatch.setattr(inference, "select_providers",
                        lambda req, avail: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(OnnxModel, "_session", lambda self, o, model, so, args, fp32: ProviderProxy(
        o.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"]),
        ["CUDAExecutionProvider", "CPUExecutionProvider"]))
    m = OnnxModel(dyn, providers=("cuda", "cpu"), threads=1, max_batch=3)
    assert m.provider == "CUDAExecutionProvider" and batches == [1, 2, 3]
