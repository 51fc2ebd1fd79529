"""Numeric precision of the models: fp32 as converted, fp16 for GPUs, and an fp16 emulation that
checks fp16's accuracy on any CPU (ROS-free).

Precisions (``OnnxModel(precision=...)``, ``KeypointConfig.precision``, the node's ``precision``
parameter):

- ``fp32``: the models as provisioned.
- ``fp16``: half precision on a GPU provider. TensorRT builds fp16 engines from the fp32 model
  (``trt_fp16_enable``); CUDA and the other GPU providers get the graph converted to fp16 with
  fp32 inputs and outputs (onnxruntime's own float16 converter, which needs the ``onnx``
  package). CPU providers stay fp32: their fp16 kernels are few and slower than fp32.
- ``auto``: ``fp16`` for the models in ``FP16_KEEPS_ACCURACY``, ``fp32`` for the others.
- ``fp16-emulated``: for accuracy checks on a CPU. Every weight and every intermediate float
  tensor is rounded to fp16 while the arithmetic stays fp32, which is how a GPU's fp16 kernels
  behave (fp16 storage, fp32 accumulation). Slow; ``pose-perception eval precision`` uses it.
"""
from __future__ import annotations

import logging
from typing import FrozenSet, Tuple

import numpy as np

LOG = logging.getLogger(__name__)

PRECISIONS: Tuple[str, ...] = ("fp32", "fp16", "auto", "fp16-emulated")

# Models that keep their accuracy in fp16 by ``pose-perception eval precision`` (README, "fp16"):
# each alone and all together moved keypoints less than a one-pixel image shift does, on the 19
# real colour images of the development data, with the fp16 emulation. The palm detector is not
# used by the pipeline and was not checked.
FP16_KEEPS_ACCURACY: FrozenSet[str] = frozenset({
    "pose_detection", "pose_landmark_full", "face_detection_short_range",
    "face_detection_full_range", "face_landmark", "hand_landmark_full",
})

_EMULATED_SUFFIX = "__fp32"
FP16_MAX = 65504.0


def check_precision(precision: str) -> str:
    """``precision`` when it is one of ``PRECISIONS``, else ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; use one of {list(PRECISIONS)}")
    return precision


def model_precision(requested: str, model_name: str) -> str:
    """What ``requested`` means for one model: ``auto`` -> ``fp16`` for the models that keep
    their accuracy in fp16, ``fp32`` for the others; the rest unchanged."""
    check_precision(requested)
    if requested == "auto":
        return "fp16" if model_name in FP16_KEEPS_ACCURACY else "fp32"
    return requested


def to_fp16(model_bytes: bytes) -> bytes:
    """The graph converted to fp16 with fp32 inputs and outputs (onnxruntime's float16 converter;
    ImportError when the ``onnx`` package is missing)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_from_string(model_bytes)
    half = convert_float_to_float16(model, keep_io_types=True)
    return half.SerializeToString()


def fp16_emulated(model_bytes: bytes) -> bytes:
    """The fp32 graph with its float weights rounded to fp16 and a Cast to fp16 and back after
    every float tensor a node produces. Run it with graph optimisations off (they would fold the
    Cast pairs away). ImportError when the ``onnx`` package is missing."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init)
            rounded = round_to_fp16(np.clip(arr, -FP16_MAX, FP16_MAX))
            graph.initializer[i].CopyFrom(numpy_helper.from_array(rounded, init.name))
    inferred = onnx.shape_inference.infer_shapes(model)
    float_values = {vi.name for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
                    if vi.type.tensor_type.elem_type == TensorProto.FLOAT}

    def round_trip(src: str, dst: str) -> list:
        """Cast ``src`` to fp16 and back into ``dst``."""
        half = src + "__fp16"
        return [helper.make_node("Cast", [src], [half], to=TensorProto.FLOAT16,
                                 name=half + "_cast"),
                helper.make_node("Cast", [half], [dst], to=TensorProto.FLOAT,
                                 name=dst + "_cast")]

    # the inputs first: the fp16 graph casts its fp32 inputs to fp16; their consumers read
    # the rounded copy
    renamed = {inp.name: inp.name + _EMULATED_SUFFIX for inp in graph.input
               if inp.type.tensor_type.elem_type == TensorProto.FLOAT}
    nodes = [c for name, rounded in renamed.items() for c in round_trip(name, rounded)]
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
        casts = []
        for k, out in enumerate(node.output):
            if out in float_values:
                node.output[k] = out + _EMULATED_SUFFIX
                casts += round_trip(node.output[k], out)
        nodes.append(node)
        nodes.extend(casts)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def round_to_fp16(arr: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest fp16 value, kept as float32 (overflow -> +-inf,
    as on a GPU)."""
    with np.errstate(over="ignore"):
        return np.asarray(arr, np.float32).astype(np.float16).astype(np.float32)
