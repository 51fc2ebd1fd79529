"""OpenVINO behind onnxruntime's session interface: the same outputs as onnxruntime, one compiled
model per input shape, clear errors, and the fallback to onnxruntime where it cannot run."""
import logging

import numpy as np
import pytest

from _onnx_fakes import affine_model, constant_model
from model_env import require_models
from pose_perception.core import inference, openvino_session
from pose_perception.core.inference import OnnxModel, cpu_providers, offered_providers
from pose_perception.core.openvino_session import PROVIDER, OpenVinoSession

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _needs_openvino():
    if not openvino_session.openvino_available():
        pytest.skip("the openvino package is not installed (pip install openvino)")


@pytest.fixture
def no_failed(monkeypatch):
    monkeypatch.setattr(inference, "_FAILED_PROVIDERS", set())


def test_offered_only_where_asked_for_and_installed(monkeypatch):
    monkeypatch.setattr(inference, "openvino_available", lambda: True)
    assert offered_providers(ort, ("openvino", "cpu"))[-2:] == [PROVIDER, "CPUExecutionProvider"]
    assert PROVIDER not in offered_providers(ort, ("cuda", "cpu"))
    monkeypatch.setattr(inference, "openvino_available", lambda: False)
    assert PROVIDER not in offered_providers(ort, ("openvino", "cpu"))


def test_use_gpu_false_keeps_the_cpu_providers_of_the_list():
    """pose_node's use_gpu false (and bench-ros --cpu, whose core reference must run the same)."""
    from pose_perception.apps.bench_ros import node_providers
    assert cpu_providers(("tensorrt", "cuda", "openvino", "cpu")) == ("openvino", "cpu")
    assert cpu_providers(("tensorrt", "cuda")) == ("cpu",)
    assert node_providers(None, cpu=True) == ["cpu"]
    assert node_providers(["cuda", "openvino", "cpu"], cpu=True) == ["openvino", "cpu"]
    assert node_providers(["cuda", "cpu"], cpu=False) == ["cuda", "cpu"]
    assert node_providers(None, cpu=False) is None


def test_without_openvino_the_cpu_provider_runs_quietly(tmp_path, monkeypatch, caplog,
                                                        no_failed):
    monkeypatch.setattr(inference, "openvino_available", lambda: False)
    path = affine_model(tmp_path / "a.onnx", 2.0, 0.5)
    with caplog.at_level(logging.WARNING):
        m = OnnxModel(path, providers=("openvino", "cpu"), threads=1)
    assert m.provider == "CPUExecutionProvider"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_same_outputs_as_onnxruntime_for_every_batch(tmp_path, no_failed):
    _needs_openvino()
    path = affine_model(tmp_path / "a.onnx", 0.7, -0.2, size=8)
    ov = OnnxModel(path, providers=("openvino", "cpu"), threads=1, max_batch=3)
    cpu = OnnxModel(path, providers=("cpu",), threads=1)
    assert ov.provider == PROVIDER and ov.compiles_per_batch and not cpu.compiles_per_batch
    assert ov.input_shape == (None, 8) and ov.output_names == ["output"]
    compiled = ov.session._compiled                    # batches 1..3 warmed up at start
    assert {(1, 8), (2, 8), (3, 8)} <= {k[0] for k in compiled if k[0] != "dynamic"}
    assert compiled[((1, 8),)] is not compiled[((2, 8),)]      # fixed shapes up to 2
    rng = np.random.default_rng(0)
    for batch in (1, 2, 5):
        x = rng.normal(size=(batch, 8)).astype(np.float32)
        (a,), (b,) = ov.run(x), cpu.run(x)
        assert a.shape == (batch, 8)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
    # larger batches share one model compiled with a dynamic batch
    assert compiled[((5, 8),)] is compiled[((3, 8),)] is compiled[("dynamic", ((8,),))]
    assert len({id(r) for r in compiled.values()}) == 3


def test_outputs_by_name_and_clear_errors(tmp_path):
    _needs_openvino()
    path = constant_model(tmp_path / "c.onnx", ["batch", 4], {
        "scores": np.full((1, 3), 0.25), "boxes": np.arange(8.0).reshape(1, 8)})
    s = OpenVinoSession(str(path), threads=1)
    assert [o.name for o in s.get_outputs()] == ["scores", "boxes"]
    assert s.get_inputs()[0].shape == [None, 4] and s.get_inputs()[0].type == "tensor(float)"
    assert s.get_providers()[0] == PROVIDER
    x = np.ones((1, 4), np.float32)
    boxes, scores = s.run(["boxes", "scores"], {"input": x})
    assert np.allclose(boxes, np.arange(8.0).reshape(1, 8)) and np.allclose(scores, 0.25)
    with pytest.raises(ValueError, match="unknown input 'image'"):
        s.run(None, {"image": x})
    with pytest.raises(ValueError, match="missing inputs"):
        s.run(None, {})
    with pytest.raises(ValueError, match=r"has shape \[1, 5\]"):
        s.run(None, {"input": np.ones((1, 5), np.float32)})


def test_model_metadata_read_from_the_onnx_file(tmp_path):
    _needs_openvino()
    import onnx
    path = affine_model(tmp_path / "m.onnx", 1.0, 0.0)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"names": "{0: 'person'}"})
    onnx.save(proto, str(path))
    assert OpenVinoSession(str(path), 1).get_modelmeta().custom_metadata_map == {
        "names": "{0: 'person'}"}
    assert OpenVinoSession(path.read_bytes(), 1).get_modelmeta().custom_metadata_map == {
        "names": "{0: 'person'}"}


def test_a_model_openvino_cannot_compile_runs_on_onnxruntime(tmp_path, monkeypatch, caplog,
                                                             no_failed):
    monkeypatch.setattr(inference, "openvino_available", lambda: True)

    def refuse(model, threads):
        raise RuntimeError("Cannot create Foo layer")
    monkeypatch.setattr(inference, "OpenVinoSession", refuse)
    path = affine_model(tmp_path / "a.onnx", 1.0, 0.0)
    with caplog.at_level(logging.WARNING):
        m = OnnxModel(path, providers=("openvino", "cpu"), threads=1)
    assert m.provider == "CPUExecutionProvider"
    assert any("OpenVINO cannot run this model" in r.getMessage() and "Foo layer" in
               r.getMessage() for r in caplog.records)
    assert np.allclose(m.run(np.zeros((1, 8), np.float32))[0], 500.0)


@pytest.mark.parametrize("name, batch", [("pose_landmark_full", 2), ("face_landmark", 1),
                                         ("pose_detection", 1), ("person_detection", 1)])
def test_the_package_models_agree_with_onnxruntime(name, batch, no_failed):
    """Each model on the same random input: OpenVINO's outputs are onnxruntime's (fp32 both)."""
    _needs_openvino()
    require_models()
    from pose_perception.core.body import is_segmentation_output
    drop = is_segmentation_output if name == "pose_landmark_full" else None
    ov = OnnxModel(name, providers=("openvino", "cpu"), threads=1, drop_outputs=drop)
    cpu = OnnxModel(name, providers=("cpu",), threads=1, drop_outputs=drop)
    assert ov.provider == PROVIDER and ov.output_names == cpu.output_names
    shape = [batch if d is None else d for d in cpu.input_shape]
    x = np.random.default_rng(1).uniform(-1, 1, size=shape).astype(np.float32)
    for a, b, out in zip(ov.run(x), cpu.run(x), cpu.output_names):
        scale = max(1.0, float(np.max(np.abs(b))))
        assert np.max(np.abs(a - b)) <= 1e-3 * scale, out
