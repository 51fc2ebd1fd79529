"""Rewrites of a model's ONNX graph before its onnxruntime session is built (ROS-free).

- ``prune_outputs``: outputs nobody uses are removed with the nodes and weights that only they
  need (BlazePose's segmentation decoder: about half of its compute).
- ``prelu_as_relu``, for onnxruntime's CPU provider: each ``PRelu`` with constant slopes ``a``
  becomes ``Relu(x) * (1 - a) + x * a``. The CPU provider runs convolutions in a blocked
  ("NCHWc") memory layout, and Relu and Add stay in that layout, but PRelu does not: each one
  converts its tensor out of the blocked layout and back, and runs a broadcasting kernel on one
  thread. MediaPipe's face mesh has 23 PRelu, its iris model 53, its palm detector 31;
  rewritten, they run 2.4x, 3x and about 2x faster on a 2-core x86 CPU (``pose-perception
  bench`` prints the per-model times). The two products by per-channel constants are 1x1
  depthwise convolutions where ``x`` is a 4-D image (a broadcasting Mul leaves the blocked
  layout too: the face mesh ran another 10 % faster so), else Mul. The rewrite differs from
  PRelu only by rounding (``x * (1 - a) + x * a`` for ``x > 0``): 5e-5 crop pixels at most on
  the face mesh's outputs. The exact ``Relu(x) - a * Relu(-x)`` was 1.35x slower than the Mul
  form (one more op per PRelu, and Neg leaves the blocked layout). GPU providers keep PRelu:
  they fuse it.

``session_model`` applies what a model needs and returns ``None`` when nothing changes, so that
the session loads the file itself. Needs the ``onnx`` package; without it the model runs as it is
(one warning).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

LOG = logging.getLogger(__name__)

Shape = Tuple[Optional[int], ...]
DropOutputs = Callable[[str, Shape], bool]
_WARNED: set = set()


def _shape_of(value_info) -> Shape:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in dims)


def prune_outputs(model, drop: DropOutputs) -> int:
    """Remove the outputs for which ``drop(name, shape)`` holds (never all of them), and the
    nodes and initializers that only they needed, in place. Returns how many were removed."""
    graph = model.graph
    keep = [o for o in graph.output if not drop(o.name, _shape_of(o))]
    if len(keep) == len(graph.output) or not keep:
        return 0
    removed = len(graph.output) - len(keep)
    del graph.output[:]
    graph.output.extend(keep)
    needed = {o.name for o in keep}
    alive = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            alive.append(node)
            needed.update(i for i in node.input if i)
    alive.reverse()
    del graph.node[:]
    graph.node.extend(alive)
    _keep_initializers(graph, needed)
    return removed


def _keep_initializers(graph, names) -> None:
    """Drop the graph's initializers not named in ``names``."""
    kept = [t for t in graph.initializer if t.name in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _slope(tensor) -> np.ndarray:
    """A PRelu's constant slope, as it is: Mul broadcasts it against x as PRelu does (numpy
    style, aligned on the last axes)."""
    from onnx import numpy_helper
    return numpy_helper.to_array(tensor).astype(np.float32)


def _ranks(model) -> Dict[str, int]:
    """The rank of each value whose shape onnx's shape inference knows."""
    from onnx import shape_inference
    try:
        graph = shape_inference.infer_shapes(model).graph
    except Exception:  # a model it cannot follow keeps the Mul form
        return {}
    return {v.name: len(v.type.tensor_type.shape.dim)
            for v in list(graph.value_info) + list(graph.input) + list(graph.output)
            if v.type.tensor_type.HasField("shape")}


def prelu_as_relu(model) -> int:
    """Rewrite every ``PRelu(x, a)`` whose slope ``a`` is a float32 initializer as
    ``Add(Relu(x) * (1 - a), x * a)``, in place (see the module's docstring for why): the
    products are 1x1 depthwise convolutions where ``a`` is per channel and ``x`` a 4-D image,
    else Mul. PRelu with a computed slope is left alone. Returns how many were rewritten."""
    from onnx import helper, numpy_helper

    graph = model.graph
    ranks = _ranks(model)
    inits = {t.name: t for t in graph.initializer}
    taken = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output} | \
        {i.name for i in graph.input}

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    nodes, new_inits, count = [], [], 0
    for node in graph.node:
        slope_t = inits.get(node.input[1]) if node.op_type == "PRelu" and len(node.input) == 2 \
            else None
        if slope_t is None or slope_t.data_type != 1:          # 1: FLOAT
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        slope = _slope(slope_t)
        base = (node.name or y) + "/prelu_as_relu"
        one_minus, a = fresh(base + "/one_minus_slope"), fresh(base + "/slope")
        relu, pos, neg = fresh(base + "/relu"), fresh(base + "/pos"), fresh(base + "/neg")
        c = slope.size
        if c > 1 and slope.shape in ((c, 1, 1), (1, c, 1, 1)) and ranks.get(x) == 4:
            shape, scale = (c, 1, 1, 1), dict(op_type="Conv", group=c, kernel_shape=[1, 1])
        else:
            shape, scale = slope.shape, dict(op_type="Mul")
        new_inits += [numpy_helper.from_array((np.float32(1.0) - slope).reshape(shape), one_minus),
                      numpy_helper.from_array(slope.reshape(shape), a)]
        nodes += [helper.make_node("Relu", [x], [relu], name=relu),
                  helper.make_node(inputs=[relu, one_minus], outputs=[pos], name=pos, **scale),
                  helper.make_node(inputs=[x, a], outputs=[neg], name=neg, **scale),
                  helper.make_node("Add", [pos, neg], [y], name=(node.name or y))]
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(new_inits)
        _keep_initializers(graph, {i for n in graph.node for i in n.input})
    return count


def session_model(path: Path, drop_outputs: Optional[DropOutputs] = None,
                  cpu: bool = False) -> Tuple[Optional[bytes], List[str]]:
    """The model at ``path`` as its session should load it: unused outputs pruned
    (``drop_outputs``), PRelu rewritten for the CPU provider (``cpu``). Returns ``(bytes, what
    changed)``, or ``(None, [])`` when nothing changes (or ``onnx`` is missing)."""
    path = Path(path)
    data = path.read_bytes()
    wants_prelu = cpu and b"PRelu" in data      # op types are plain strings in the protobuf
    if drop_outputs is None and not wants_prelu:
        return None, []
    try:
        import onnx
    except ImportError:
        if "onnx" not in _WARNED:
            _WARNED.add("onnx")
            LOG.warning("the 'onnx' Python package is missing (pip install onnx): %s and other "
                        "models run with outputs nobody uses and, on the CPU, slower PRelu",
                        path.name)
        return None, []
    from onnx.external_data_helper import load_external_data_for_model
    model = onnx.load_from_string(data)
    load_external_data_for_model(model, str(path.parent))   # weights kept in other files
    changes = []
    if drop_outputs is not None:
        n = prune_outputs(model, drop_outputs)
        if n:
            changes.append(f"{n} unused output{'s' if n > 1 else ''} pruned")
    if wants_prelu:
        n = prelu_as_relu(model)
        if n:
            changes.append(f"{n} PRelu as Relu, scale, Add (CPU)")
    return (model.SerializeToString(), changes) if changes else (None, [])
