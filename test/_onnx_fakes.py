"""Tiny synthetic ONNX models for unit tests (no provisioned models needed)."""
from pathlib import Path
from typing import Dict, Sequence

import numpy as np


def constant_model(path: Path, input_shape: Sequence, outputs: Dict[str, np.ndarray],
                   opset: int = 17) -> Path:
    """A model with one float input of ``input_shape`` (str = symbolic dim) whose outputs are
    the given constants (plus 0 * mean(input), so that the input is really used)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0)]
    inits, outs = [], []
    for i, (name, value) in enumerate(outputs.items()):
        value = np.asarray(value, np.float32)
        inits.append(numpy_helper.from_array(value, f"c{i}"))
        inits.append(numpy_helper.from_array(np.zeros((), np.float32), f"z{i}"))
        nodes.append(helper.make_node("Mul", ["m", f"z{i}"], [f"mz{i}"]))
        nodes.append(helper.make_node("Add", [f"c{i}", f"mz{i}"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "fake",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))],
        outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def affine_model(path: Path, weight: float, bias: float, size: int = 8, opset: int = 17) -> Path:
    """``output = sigmoid(input * weight + bias) * 1000`` on a (batch, size) float input: a model
    whose arithmetic shows rounding (for precision tests)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.full((size,), weight, np.float32), "w"),
             numpy_helper.from_array(np.full((size,), bias, np.float32), "b"),
             numpy_helper.from_array(np.array(1000.0, np.float32), "k")]
    nodes = [helper.make_node("Mul", ["input", "w"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["s"]),
             helper.make_node("Mul", ["s", "k"], ["output"])]
    graph = helper.make_graph(
        nodes, "affine",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", size])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


class ProviderProxy:
    """A real CPU onnxruntime session that reports the providers a GPU machine would have
    started (to test what OnnxModel does with them)."""

    def __init__(self, session, providers):
        self._s, self._providers = session, providers

    def get_providers(self):
        return list(self._providers)

    def __getattr__(self, name):
        return getattr(self._s, name)
