"""ONNX graph surgery for the converter (``tflite_to_onnx.py``, whose folder is on the path when it
runs in the converter environment): a dynamic batch dimension and its check, byte-reproducible
node order and names, onnxruntime sessions, I/O descriptions. Imports nothing from
pose_perception."""
from __future__ import annotations

import copy
import hashlib

import numpy as np

# Batch-3 vs 3x batch-1 difference allowed (relative to the output's scale).
BATCH_TOL = 1e-4


def make_batch_dynamic(model_proto):
    """Symbolic batch dim ``batch`` on inputs/outputs; constant Reshape targets with leading 1
    -> -1."""
    import onnx
    from onnx import numpy_helper

    m = copy.deepcopy(model_proto)
    g = m.graph
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        # batch 1, or a batch tf2onnx left unknown (``unk__<counter>``: its name would differ
        # from run to run)
        if len(dims) and ((dims[0].HasField("dim_value") and dims[0].dim_value == 1)
                          or dims[0].dim_param.startswith("unk__")):
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del g.value_info[:]
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for node in g.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        name = node.input[1]
        if name in inits:
            arr = numpy_helper.to_array(inits[name]).copy()
            if arr.ndim == 1 and arr.size >= 2 and arr[0] == 1 and -1 not in arr[1:]:
                arr[0] = -1
                inits[name].CopyFrom(numpy_helper.from_array(arr, name))
        elif name in consts:
            attr = consts[name].attribute[0]
            arr = numpy_helper.to_array(attr.t).copy()
            if arr.ndim == 1 and arr.size >= 2 and arr[0] == 1 and -1 not in arr[1:]:
                arr[0] = -1
                attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
    onnx.checker.check_model(m)
    return m


def _structural_keys(g):
    """Per node, a hash of what it computes (op, attributes, inputs' keys or constant values),
    independent of tensor names: equal only for identical computations."""
    def unnamed(proto) -> bytes:
        proto = copy.deepcopy(proto)
        if hasattr(proto, "t") and proto.HasField("t"):
            proto.t.name = ""
        elif not hasattr(proto, "t"):
            proto.name = ""
        return proto.SerializeToString()

    consts = {t.name: hashlib.sha1(unnamed(t)).hexdigest() for t in g.initializer}
    out_key = {v.name: "input:" + v.name for v in g.input}
    keys = []
    for n in g.node:  # tf2onnx writes nodes in a valid topological order
        h = hashlib.sha1(n.op_type.encode())
        for a in sorted(n.attribute, key=lambda a: a.name):
            h.update(unnamed(a))
        for i in n.input:
            h.update((out_key.get(i) or consts.get(i) or ("?" + i)).encode() + b"|")
        k = h.hexdigest()
        keys.append(k)
        for j, o in enumerate(n.output):
            out_key[o] = f"{k}:{j}"
    return keys


def canonicalize(model_proto) -> None:
    """Make the file byte-identical from run to run: tf2onnx orders independent nodes, names
    merged duplicates and numbers generated names differently each time. Nodes are put in a
    topological order with ties broken by what they compute; intermediate tensors and nodes are
    renamed ``<op>_<k>``, initializers ``const_<k>`` (graph input/output names are kept)."""
    import heapq

    g = model_proto.graph
    nodes = list(g.node)
    keys = _structural_keys(g)
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    deps = [{producer[i] for i in n.input if i in producer} for n in nodes]
    users = [[] for _ in nodes]
    for k, d in enumerate(deps):
        for j in d:
            users[j].append(k)
    ready = [(keys[k], k) for k, d in enumerate(deps) if not d]
    heapq.heapify(ready)
    order, left = [], [len(d) for d in deps]
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for u in users[k]:
            left[u] -= 1
            if left[u] == 0:
                heapq.heappush(ready, (keys[u], u))
    if len(order) != len(nodes):
        raise RuntimeError("canonicalize: the graph has a cycle")
    keep = {v.name for v in list(g.input) + list(g.output)}
    inits = {t.name: t for t in g.initializer}
    rename, n_const = {}, 0
    for pos, k in enumerate(order):
        n = nodes[k]
        for i in n.input:
            if i in inits and i not in rename and i not in keep:
                rename[i] = f"const_{n_const}"
                n_const += 1
        for j, o in enumerate(n.output):
            if o not in keep:
                rename[o] = f"{n.op_type}_{pos}" + (f"_{j}" if j else "")
        n.name = f"{n.op_type}_{pos}"
    for n in nodes:
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    used = [t for t in g.initializer if t.name in rename]
    used.sort(key=lambda t: int(rename[t.name][6:]))
    rest = [t for t in g.initializer if t.name not in rename]
    for t in used:
        t.name = rename[t.name]
    new_inits = [copy.deepcopy(t) for t in used + rest]
    new_nodes = [copy.deepcopy(nodes[k]) for k in order]
    del g.initializer[:]
    g.initializer.extend(new_inits)
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]


def ort_session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def _variants(x: np.ndarray):
    """Three different inputs of x's shape (batch 1)."""
    flipped = np.ascontiguousarray(x[:, :, ::-1]) if x.ndim > 2 else np.ascontiguousarray(
        x[:, ::-1])
    return [x, flipped, (x * 0.5 + 0.25 * x.max()).astype(x.dtype)]


def batch_check(model_bytes: bytes, x) -> float:
    """Relative max difference between one batch-3 run and three batch-1 runs; ``x``: the first
    input (batch 1), or a dict input name -> array for a model with several inputs."""
    sess = ort_session(model_bytes)
    feeds = x if isinstance(x, dict) else {sess.get_inputs()[0].name: x}
    variants = {k: _variants(v) for k, v in feeds.items()}
    xs = [{k: v[i] for k, v in variants.items()} for i in range(3)]
    batched = sess.run(None, {k: np.concatenate(v, 0) for k, v in variants.items()})
    worst = 0.0
    for i, xi in enumerate(xs):
        single = sess.run(None, xi)
        for b, s in zip(batched, single):
            if b.shape[0] != 3 or b[i:i + 1].shape != s.shape:
                raise RuntimeError(f"batch output shape {b.shape} vs single {s.shape}")
            scale = max(1.0, float(np.abs(s).max()))
            worst = max(worst, float(np.abs(b[i:i + 1] - s).max()) / scale)
    return worst
