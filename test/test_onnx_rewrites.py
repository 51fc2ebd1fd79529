"""Graph rewrites before a session is built: unused outputs pruned, and PRelu rewritten for the CPU
provider (same outputs to rounding; never on a GPU provider or in the fp16 emulation)."""
import logging
import sys

import numpy as np
import pytest

from _onnx_fakes import ProviderProxy
from model_env import require_models
from pose_perception.core import inference, onnx_rewrites
from pose_perception.core.inference import OnnxModel

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
C = 4
SLOPES = np.array([-0.7, 0.0, 0.25, 1.6], np.float32)   # negative, zero, usual, above one


def prelu_model(path):
    """NCHW input -> Conv -> PRelu (slope (C,1,1)) -> PRelu (slope (1,C,1,1)) -> PRelu (scalar
    slope) -> PRelu (slope computed in the graph: left alone) -> output."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(size=(C, C, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=C).astype(np.float32), "b"),
             numpy_helper.from_array(SLOPES.reshape(C, 1, 1), "s1"),
             numpy_helper.from_array(SLOPES[::-1].reshape(1, C, 1, 1).copy(), "s2"),
             numpy_helper.from_array(np.array([0.3], np.float32), "s3"),
             numpy_helper.from_array(np.array(-0.5, np.float32), "s4")]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "s1"], ["p1"], name="first"),
             helper.make_node("PRelu", ["p1", "s2"], ["p2"]),
             helper.make_node("PRelu", ["p2", "s3"], ["p3"]),
             helper.make_node("Neg", ["s4"], ["s4n"]),
             helper.make_node("PRelu", ["p3", "s4n"], ["output"])]
    graph = helper.make_graph(
        nodes, "prelu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", C, C, C])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", C, C, C])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def prelu(tmp_path_factory):
    return prelu_model(tmp_path_factory.mktemp("m") / "prelu.onnx")


def _reference(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})


def _ops(data):
    return [n.op_type for n in onnx.load_from_string(data).graph.node]


def test_prelu_with_constant_slopes_is_rewritten_and_computes_the_same(prelu):
    data, changes = onnx_rewrites.session_model(prelu, cpu=True)
    assert changes == ["3 PRelu as Relu, scale, Add (CPU)"]
    ops = _ops(data)
    assert ops.count("PRelu") == 1 and ops.count("Relu") == 3   # the computed slope stays
    # per-channel slopes on the 4-D image: 1x1 depthwise convolutions; the scalar one: Mul
    assert ops.count("Conv") == 1 + 2 * 2 and ops.count("Mul") == 2
    onnx.checker.check_model(onnx.load_from_string(data))
    x = np.random.default_rng(0).normal(scale=3.0, size=(2, C, C, C)).astype(np.float32)
    m = OnnxModel(prelu, providers=("cpu",), threads=1)
    assert m.rewrites == changes
    (out,) = m.run(x)
    (ref,) = _reference(prelu, x)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_the_rewrite_breaks_a_wrong_slope_layout(prelu, monkeypatch):
    """The test above can fail: a slope broadcast along the wrong axis (the last: the images are
    C x C) gives other outputs."""
    real = onnx_rewrites._slope
    monkeypatch.setattr(onnx_rewrites, "_slope", lambda t: real(t).reshape(-1))
    x = np.random.default_rng(0).normal(scale=3.0, size=(2, C, C, C)).astype(np.float32)
    (out,) = OnnxModel(prelu, providers=("cpu",), threads=1).run(x)
    (ref,) = _reference(prelu, x)
    assert np.abs(out - ref).max() > 0.1


def test_no_rewrite_off_the_cpu_or_in_the_fp16_emulation(prelu, monkeypatch):
    asked = []
    real = onnx_rewrites.session_model
    monkeypatch.setattr(inference, "session_model",
                        lambda path, drop, cpu: asked.append(cpu) or real(path, drop, cpu=cpu))
    assert OnnxModel(prelu, providers=("cpu",), threads=1, warmup=False).rewrites
    assert not OnnxModel(prelu, providers=("cpu",), threads=1, warmup=False,
                         precision="fp16-emulated").rewrites
    monkeypatch.setattr(inference, "_FAILED_PROVIDERS", set())
    monkeypatch.setattr(inference, "select_providers",
                        lambda req, avail: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(OnnxModel, "_session", lambda self, o, model, so, args, fp32: ProviderProxy(
        o.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"]),
        ["CUDAExecutionProvider", "CPUExecutionProvider"]))
    m = OnnxModel(prelu, providers=("cuda", "cpu"), threads=1, warmup=False, precision="fp32")
    assert m.provider == "CUDAExecutionProvider" and not m.rewrites
    assert asked == [True, False, False]


def test_nothing_to_do_loads_the_file_itself(prelu, tmp_path):
    assert onnx_rewrites.session_model(prelu, cpu=False) == (None, [])
    assert onnx_rewrites.session_model(prelu, lambda n, s: False, cpu=False) == (None, [])
    data, changes = onnx_rewrites.session_model(prelu, lambda n, s: False, cpu=True)
    assert changes == ["3 PRelu as Relu, scale, Add (CPU)"] and data


def test_without_the_onnx_package_the_model_runs_as_it_is(prelu, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnx", None)          # import onnx raises ImportError
    monkeypatch.setattr(onnx_rewrites, "_WARNED", set())
    with caplog.at_level(logging.WARNING):
        m = OnnxModel(prelu, providers=("cpu",), threads=1)
    assert m.rewrites == [] and "'onnx' Python package is missing" in caplog.text
    x = np.ones((1, C, C, C), np.float32)
    np.testing.assert_allclose(m.run(x)[0], _reference(prelu, x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,size", [("face_landmark", 192), ("iris_landmark", 64)])
def test_real_models_give_the_same_outputs_rewritten(name, size, shared_data):
    """MediaPipe's face mesh and iris model on a real face: the CPU rewrite moves no output by
    more than 1e-3 (crop pixels; logits)."""
    import cv2

    models = require_models()
    img = cv2.imread(str(shared_data / "face_dev" / "300w" / "indoor_029.png"))
    assert img is not None
    h, w = img.shape[:2]
    side = min(h, w) // 2
    crop = img[h // 2 - side // 2:h // 2 + side // 2, w // 2 - side // 2:w // 2 + side // 2]
    x = cv2.resize(crop[:, :, ::-1], (size, size)).astype(np.float32)[None] / 255.0
    path = models / f"{name}.onnx"
    m = OnnxModel(path, providers=("cpu",), threads=1)
    assert m.rewrites and "PRelu" in m.rewrites[0]
    ref = _reference(path, x)
    out = m.run(x)
    assert len(out) == len(ref)
    for a, b in zip(out, ref):
        assert np.abs(a - b).max() < 1e-3


def test_a_model_with_external_weights_is_rewritten_with_them(prelu, tmp_path):
    """Weights in a separate file (large custom models): the rewritten model carries them."""
    model = onnx.load(str(prelu))
    path = tmp_path / "external.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.bin", size_threshold=0)
    assert (tmp_path / "external.bin").stat().st_size > 0
    x = np.random.default_rng(1).normal(scale=3.0, size=(1, C, C, C)).astype(np.float32)
    m = OnnxModel(path, providers=("cpu",), threads=1)
    assert m.rewrites == ["3 PRelu as Relu, scale, Add (CPU)"]
    np.testing.assert_allclose(m.run(x)[0], _reference(prelu, x)[0], rtol=1e-5, atol=1e-5)
