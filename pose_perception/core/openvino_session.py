"""OpenVINO's CPU runtime behind onnxruntime's session interface (ROS-free).

The onnxruntime wheels on PyPI have no OpenVINO execution provider, but the ``openvino`` package
(``pip install openvino``) reads the same ONNX graphs, and on an x86 CPU it runs the package's
models faster than onnxruntime's CPU provider (README, *Performance*). :class:`OpenVinoSession`
offers the part of ``onnxruntime.InferenceSession`` that :class:`~.inference.OnnxModel` and
the custom models use (``get_inputs``, ``get_outputs``, ``get_providers``, ``get_modelmeta``,
``run``), so that ``providers: [openvino, cpu]`` selects it like any other provider.

A dynamic batch compiled as such ran slower than the same batch compiled as a fixed shape (the
body model, 2 threads: 9.7 against 7.8 ms for two people), so batches of up to
``STATIC_BATCHES`` get a compiled model of their own; larger batches share one compiled with a
dynamic batch (each compiled model holds its own weights and buffers: 25 MB and more). Each is
compiled the first time it is needed (``OnnxModel`` warms up every batch up to its
``max_batch``). The models run in fp32 (``INFERENCE_PRECISION_HINT``: a CPU with bf16 units
would otherwise get bf16 and other numbers).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

PROVIDER = "OpenVINOExecutionProvider"     # the name onnxruntime gives its own OpenVINO provider
STATIC_BATCHES = 2                         # batches up to this size compiled as fixed shapes

_ELEMENT_TYPES = {"f32": "tensor(float)", "f16": "tensor(float16)", "i64": "tensor(int64)",
                  "i32": "tensor(int32)", "u8": "tensor(uint8)", "boolean": "tensor(bool)"}
_CORE = None
_CORE_LOCK = threading.Lock()


def openvino_available() -> bool:
    """True when the ``openvino`` Python package imports."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _core():
    """One ``openvino.Core`` per process (it loads the device plugins)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov
            _CORE = ov.Core()
        return _CORE


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it: name, shape (None where dynamic), type."""

    name: str
    shape: List[Optional[int]]
    type: str


def _arg(port) -> NodeArg:
    shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
    kind = port.get_element_type().get_type_name()
    return NodeArg(port.get_any_name(), shape, _ELEMENT_TYPES.get(kind, f"tensor({kind})"))


class OpenVinoSession:
    """An ONNX model (file path or serialised bytes) compiled for OpenVINO's CPU device with
    ``threads`` inference threads. Raises whatever OpenVINO raises for a graph it cannot read
    or compile (the caller falls back to onnxruntime)."""

    def __init__(self, model: Union[str, bytes], threads: int) -> None:
        self._onnx = model
        self._model = _core().read_model(model)
        self._inputs = [_arg(p) for p in self._model.inputs]
        self._outputs = [_arg(p) for p in self._model.outputs]
        self._input_index = {a.name: i for i, a in enumerate(self._inputs)}
        self._output_index = {a.name: i for i, a in enumerate(self._outputs)}
        # not pinned: the package runs two models at once (the keypoint worker beside the body
        # model), and threads pinned to the same cores slowed the whole frame (README)
        self.config = {"INFERENCE_NUM_THREADS": max(1, int(threads)),
                       "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                       "ENABLE_CPU_PINNING": False}
        # input shapes (or "dynamic" and the shapes without their batch) -> infer request
        self._compiled: Dict[tuple, object] = {}
        self._lock = threading.Lock()
        # compile the model's own static shape now, so that a graph OpenVINO cannot compile
        # fails here (where the caller falls back) and not on the first frame
        if all(None not in a.shape for a in self._inputs):
            self._request(tuple(tuple(a.shape) for a in self._inputs))

    # ------------------------------------------------------- onnxruntime's session interface
    def get_inputs(self) -> List[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        return list(self._outputs)

    def get_providers(self) -> List[str]:
        """OpenVINO, then the CPU provider (as onnxruntime lists its own: the CPU last)."""
        return [PROVIDER, "CPUExecutionProvider"]

    def get_modelmeta(self):
        """The ONNX model's ``metadata_props`` as ``custom_metadata_map`` (empty without the
        ``onnx`` package)."""
        meta: Dict[str, str] = {}
        try:
            import onnx
            proto = (onnx.load_from_string(self._onnx) if isinstance(self._onnx, bytes)
                     else onnx.load(self._onnx, load_external_data=False))
            meta = {p.key: p.value for p in proto.metadata_props}
        except Exception:  # no onnx package or an unreadable file: no metadata
            pass
        return SimpleNamespace(custom_metadata_map=meta)

    def run(self, output_names: Optional[Sequence[str]],
            feed: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        """The outputs named (all when None), in that order, for ``feed`` (input name -> array)."""
        arrays: List[Optional[np.ndarray]] = [None] * len(self._inputs)
        for name, value in feed.items():
            if name not in self._input_index:
                raise ValueError(f"unknown input '{name}'; the model's inputs: "
                                 f"{[a.name for a in self._inputs]}")
            arrays[self._input_index[name]] = np.ascontiguousarray(value)
        if any(a is None for a in arrays):
            raise ValueError(f"missing inputs: every one of {[a.name for a in self._inputs]} "
                             "is needed")
        wanted = (range(len(self._outputs)) if output_names is None
                  else [self._output_index[n] for n in output_names])
        key = tuple(a.shape for a in arrays)
        with self._lock:            # an infer request serves one call at a time
            request = self._request(key)
            request.infer(arrays)
            return [request.get_output_tensor(i).data.copy() for i in wanted]

    # ------------------------------------------------------------------------ compiling
    def _request(self, shapes: Tuple[Tuple[int, ...], ...]):
        """The infer request of the model compiled for these input shapes: their own for a
        batch of up to ``STATIC_BATCHES``, else the one with a dynamic batch."""
        request = self._compiled.get(shapes)
        if request is not None:
            return request
        for given, arg in zip(shapes, self._inputs):
            if len(given) != len(arg.shape) or any(
                    d is not None and d != g for d, g in zip(arg.shape, given)):
                raise ValueError(f"input '{arg.name}' has shape {list(given)}, the model takes "
                                 f"{[d if d is not None else '?' for d in arg.shape]}")
        dynamic = any(None in a.shape for a in self._inputs)
        fixed = not dynamic or max((s[0] for s in shapes if s), default=1) <= STATIC_BATCHES
        key = shapes if fixed else ("dynamic", tuple(s[1:] for s in shapes))
        request = self._compiled.get(key)
        if request is None:
            model = self._model.clone()
            if dynamic:       # the given shapes, or them with the batch left dynamic
                model.reshape({i: list(s) if fixed or not s else [-1, *s[1:]]
                               for i, s in enumerate(shapes)})
            request = _core().compile_model(model, "CPU", self.config).create_infer_request()
            self._compiled[key] = request
        self._compiled[shapes] = request
        return request
