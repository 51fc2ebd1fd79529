"""One onnxruntime inference layer for every model of the package.

``OnnxModel`` builds a session with the execution providers that really work on this machine, in
the order asked for (TensorRT -> CUDA -> CPU by default), tells which one is in use, checks the
model's input/output shapes at load time, finds outputs by name or shape (output order differs
between the converted models) and runs a warm-up inference so that the first real frame is not
slow. ROS-free.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .model_files import provision_hint, resolve_model_path, trt_batch_profile, trt_cache_dir
from .onnx_rewrites import Shape, session_model
from .openvino_session import PROVIDER as OPENVINO, OpenVinoSession, openvino_available
from .precision import fp16_emulated, model_precision, to_fp16
from .worker import INFERENCE_CLOCK

LOG = logging.getLogger(__name__)

# short names accepted in configuration -> onnxruntime provider names
PROVIDER_ALIASES: Dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
GPU_PROVIDERS = frozenset({
    "TensorrtExecutionProvider", "CUDAExecutionProvider", "ROCMExecutionProvider",
    "MIGraphXExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider",
})
DEFAULT_PROVIDERS: Tuple[str, ...] = ("tensorrt", "cuda", "cpu")
MAX_DEFAULT_THREADS = 4
# on this many usable cores or fewer, the models' intra-op threads do not spin (several sessions
# run one after another or side by side: spinning threads would take the cores from each other)
NO_SPIN_MAX_CORES = 4

_FALLBACKS_WARNED: set = set()   # keys of the warnings already given (once per process)
_FAILED_PROVIDERS: set = set()   # providers that could not start in this process (not retried)


def _warn_once(key: tuple, msg: str, *args) -> None:
    """A warning logged once per process for ``key`` (later: debug)."""
    (LOG.debug if key in _FALLBACKS_WARNED else LOG.warning)(msg, *args)
    _FALLBACKS_WARNED.add(key)


class ModelLoadError(RuntimeError):
    """A model file is missing, unreadable, or does not have the inputs/outputs expected."""


def provider_name(name: str) -> str:
    """``'cuda'`` -> ``'CUDAExecutionProvider'``; full onnxruntime names pass through."""
    key = name.strip()
    if key.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key.lower()]
    if key.endswith("ExecutionProvider"):
        return key
    raise ValueError(f"unknown execution provider '{name}'; use one of "
                     f"{sorted(set(PROVIDER_ALIASES))} or an onnxruntime provider name")


def gpu_fallback_note(requested: Sequence[str], in_use: str,
                      available: Optional[Sequence[str]] = None) -> Optional[Tuple[str, str]]:
    """GPU providers were asked for (``requested``) but ``in_use`` is not one: ``("warning",
    text)`` when this onnxruntime build offers one of them (a GPU build whose provider failed to
    start), ``("info", text)`` for a CPU-only build (nothing failed: there is no GPU support to
    fail); None when no GPU provider was asked for or one is in use. ``available``: the build's
    providers (default: ``onnxruntime.get_available_providers()``)."""
    wanted = [n for n in dict.fromkeys(provider_name(p) for p in requested) if n in GPU_PROVIDERS]
    if not wanted or in_use in GPU_PROVIDERS:
        return None
    if available is None:
        import onnxruntime as ort
        available = ort.get_available_providers()
    offered = [n for n in wanted if n in available]
    if offered:
        return ("warning", f"no GPU execution provider works here: {', '.join(offered)} "
                f"installed (onnxruntime offers {list(available)}) but did not start, running "
                f"on {in_use}, which is slower; the start-up log says why (usually CUDA/cuDNN/"
                "TensorRT libraries that do not match). Set use_gpu:=false to silence this, or "
                "require_gpu:=true to refuse to start without a GPU")
    return ("info", f"running on {in_use}: this onnxruntime build has no GPU support (it offers "
            f"{list(available)}); `make setup ORT=gpu` or onnxruntime-gpu for a GPU")


def select_providers(requested: Sequence[str], available: Sequence[str]) -> List[str]:
    """The requested providers that this onnxruntime build offers, in the requested order.

    CPU is always appended as the last resort (every model must be able to run on CPU)."""
    wanted = [provider_name(p) for p in requested]
    chosen = [p for p in dict.fromkeys(wanted) if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def cpu_providers(requested: Sequence[str]) -> Tuple[str, ...]:
    """``requested`` without the GPU providers (what ``use_gpu: false`` runs): OpenVINO and the
    CPU provider where listed; ``('cpu',)`` when nothing else is left."""
    kept = tuple(p for p in requested if provider_name(p) not in GPU_PROVIDERS)
    return kept or ("cpu",)


def run_providers(providers: Sequence[str], use_gpu: bool) -> Tuple[str, ...]:
    """The providers a pipeline runs with, given pose_node's ``providers`` and ``use_gpu``."""
    return tuple(providers) if use_gpu else cpu_providers(providers)


def offered_providers(ort, requested: Sequence[str] = ()) -> List[str]:
    """The providers this onnxruntime build offers, and OpenVINO where it is ``requested`` and
    the ``openvino`` package (not onnxruntime) provides it (:class:`OpenVinoSession`)."""
    available = list(ort.get_available_providers())
    if (OPENVINO not in available and any(provider_name(p) == OPENVINO for p in requested)
            and openvino_available()):
        available.insert(available.index("CPUExecutionProvider")
                         if "CPUExecutionProvider" in available else len(available), OPENVINO)
    return available


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """Intra-op threads: the number of usable cores, at most ``MAX_DEFAULT_THREADS``."""
    return max(1, min(usable_cores(), MAX_DEFAULT_THREADS))


_CUDA_LIBS_PRELOADED = False


def preload_cuda_libraries(ort) -> bool:
    """Load the CUDA/cuDNN libraries that pip installed (``onnxruntime-gpu[cuda,cudnn]``, the
    ``nvidia`` packages), once per process, so that the CUDA and TensorRT providers find them
    without LD_LIBRARY_PATH. Nothing is done without those packages or on an onnxruntime without
    ``preload_dlls`` (< 1.21). True when the libraries were loaded."""
    global _CUDA_LIBS_PRELOADED
    if _CUDA_LIBS_PRELOADED:
        return True
    import importlib.util
    if not hasattr(ort, "preload_dlls") or importlib.util.find_spec("nvidia") is None:
        return False
    try:
        ort.preload_dlls(msvc=False)
    except Exception as exc:  # a broken or partial CUDA install: the providers say what fails
        LOG.warning("could not load the pip-installed CUDA libraries: %s: %s",
                    type(exc).__name__, str(exc)[:200])
        return False
    _CUDA_LIBS_PRELOADED = True
    return True


def _dims(shape) -> Shape:
    """onnxruntime shape (ints, strings for symbolic dims, None) -> ints or None."""
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def _shape_matches(actual: Shape, expected: Sequence[Optional[int]]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(e is None or a is None or a == e for a, e in zip(actual, expected))


class OnnxModel:
    """An onnxruntime session with provider fallback, shape checks and output lookup.

    Args:
        path: model file (or a provisioned model name, see ``resolve_model_path``).
        providers: preferred execution providers, best first ('tensorrt', 'cuda', 'cpu', ...).
            Those not offered by the installed onnxruntime are skipped (warning logged); CPU is
            always the last resort.
        threads: intra-op threads; default = usable cores, at most 4.
        require_gpu: raise ``RuntimeError`` when no GPU provider ends up in use.
        warmup: run one inference on zeros at construction.
        input_shape: expected input shape, ``None`` for "any" in a dimension (e.g.
            ``(None, 256, 256, 3)``); a mismatch raises ``ModelLoadError``.
        output_shapes: expected output shapes (any order; each must match one output).
        cache_dir: where TensorRT caches built engines (default
            ``~/.cache/pose_perception/trt_engines``).
        drop_outputs: ``drop(name, shape)`` -> True for outputs the caller never uses; they and
            the part of the graph only they need are removed before the session is built.
            When the CPU provider comes first, PRelu is rewritten in a form it runs faster
            (``onnx_rewrites``); ``self.rewrites`` lists what was changed.
        precision: 'fp32', 'fp16', 'auto' or 'fp16-emulated' (see ``precision.py``). fp16 is
            used on GPU providers only; ``self.precision`` says what runs.
        max_batch: the largest batch the caller will run (dynamic-batch models): TensorRT gets
            an optimisation profile for batches 1..max_batch, and on a GPU every batch size is
            warmed up, so that a second person never stalls a frame with an engine build or a
            cuDNN algorithm search.
    """

    def __init__(self, path: Union[str, Path], providers: Sequence[str] = DEFAULT_PROVIDERS,
                 threads: Optional[int] = None, require_gpu: bool = False, warmup: bool = True,
                 input_shape: Optional[Sequence[Optional[int]]] = None,
                 output_shapes: Optional[Sequence[Sequence[Optional[int]]]] = None,
                 cache_dir: Optional[Union[str, Path]] = None,
                 drop_outputs: Optional[Callable[[str, Shape], bool]] = None,
                 precision: str = "fp32", max_batch: Optional[int] = None) -> None:
        import onnxruntime as ort

        self.path = resolve_model_path(path)
        self.name = self.path.stem
        self.threads = int(threads) if threads else default_threads()
        available = offered_providers(ort, providers)
        chosen = select_providers(providers, available)
        skipped = [provider_name(p) for p in providers
                   if provider_name(p) not in chosen]
        if skipped:
            LOG.debug("%s: providers not offered by this onnxruntime build: %s", self.name, skipped)
        if _FAILED_PROVIDERS & set(chosen):   # already failed to start for an earlier model
            chosen = [p for p in chosen if p not in _FAILED_PROVIDERS]

        so = self._session_options(ort)
        if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(chosen):
            preload_cuda_libraries(ort)
        wanted = model_precision(precision, self.name)
        trt_fp16 = wanted == "fp16" and chosen[0] == "TensorrtExecutionProvider"
        provider_args = self._provider_args(chosen, trt_fp16, cache_dir, max_batch)
        # the CPU provider's rewrites only where the graph runs as it is on the CPU (an fp16
        # emulation must stay the graph a GPU runs)
        cpu = chosen[0] == "CPUExecutionProvider" and wanted != "fp16-emulated"
        try:
            rewritten, self.rewrites = session_model(self.path, drop_outputs, cpu=cpu)
        except Exception as exc:
            raise ModelLoadError(f"could not read ONNX model {self.path}: {type(exc).__name__}: "
                                 f"{str(exc)[:300]}{provision_hint(self.path)}") from exc
        if self.rewrites:
            LOG.debug("%s: %s", self.name, "; ".join(self.rewrites))
        self._open(ort, rewritten if rewritten else str(self.path), so, provider_args, wanted,
                   explicit_fp16=precision == "fp16")

        self.providers: List[str] = list(self.session.get_providers())
        failed = [p for p in chosen if p not in self.providers]
        if failed:
            _FAILED_PROVIDERS.update(failed)
            LOG.warning("%s could not start (onnxruntime says why above); the other models skip "
                        "%s", ", ".join(failed), "it" if len(failed) == 1 else "them")
        self.provider: str = self.providers[0] if self.providers else "CPUExecutionProvider"
        wanted_first = provider_name(providers[0]) if providers else "CPUExecutionProvider"
        if self.provider != wanted_first:
            # a provider this build does not offer is no failure (a CPU-only onnxruntime): the
            # node says so once (gpu_fallback_note); one it offers that did not start is
            log = _warn_once if wanted_first in available else \
                (lambda key, *args: LOG.debug(*args))
            log((tuple(providers), self.provider), "%s: running on %s, not %s (onnxruntime "
                "offers %s)", self.name, self.provider, wanted_first, available)
        if require_gpu and self.provider not in GPU_PROVIDERS:
            raise RuntimeError(
                f"{self.name}: a GPU execution provider is required but none works here "
                f"(onnxruntime offers {available}; in use: {self.providers}). Install "
                f"onnxruntime-gpu with matching CUDA/TensorRT libraries, or set require_gpu=False")

        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()
        self.input_names = [i.name for i in self.inputs]
        self.output_names = [o.name for o in self.outputs]
        self.input_shapes: List[Shape] = [_dims(i.shape) for i in self.inputs]
        self.output_shapes: List[Shape] = [_dims(o.shape) for o in self.outputs]
        if input_shape is not None:
            self.check_input_shape(input_shape)
        if output_shapes is not None:
            self.check_output_shapes(output_shapes)
        if warmup:
            self.warmup()
            if max_batch and self.dynamic_batch and self.compiles_per_batch:
                for batch in range(2, int(max_batch) + 1):
                    self.warmup(batch)

    def _session_options(self, ort):
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if usable_cores() <= NO_SPIN_MAX_CORES:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _provider_args(self, chosen: Sequence[str], trt_fp16: bool,
                       cache_dir: Optional[Union[str, Path]], max_batch: Optional[int]) -> List:
        """onnxruntime's providers argument: TensorRT with its engine cache (one folder per
        precision: TensorRT does not check a cached engine's precision), fp16 flag and batch
        profile; the others by name."""
        args: List = []
        for p in chosen:
            if p == "TensorrtExecutionProvider":
                cache = (Path(cache_dir) if cache_dir else trt_cache_dir()) / \
                    ("fp16" if trt_fp16 else "fp32")
                args.append((p, {"trt_engine_cache_enable": True,
                                 "trt_engine_cache_path": str(cache),
                                 "trt_fp16_enable": trt_fp16,
                                 **trt_batch_profile(self.path, max_batch)}))
            else:
                args.append(p)
        return args

    def _open(self, ort, fp32_model: Union[str, bytes], so, provider_args: List, wanted: str,
              explicit_fp16: bool) -> None:
        """``self.session`` in the precision ``wanted``, as far as the provider that really
        starts allows; ``self.precision`` says what runs (see the class docstring)."""
        first = provider_args[0][0] if isinstance(provider_args[0], tuple) else provider_args[0]
        trt_fp16 = wanted == "fp16" and first == "TensorrtExecutionProvider"
        model = fp32_model
        self.precision = "fp32"
        if wanted == "fp16-emulated":
            model = self._transformed(model, fp16_emulated, wanted)
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        elif wanted == "fp16" and first in GPU_PROVIDERS and not trt_fp16:
            model = self._transformed(model, to_fp16, wanted)
        elif wanted == "fp16" and explicit_fp16 and not trt_fp16:
            _warn_once(("fp16-cpu",), "fp16 is used on GPU providers only: the models run in fp32 "
                       "on %s", first)
        self.session = self._session(ort, model, so, provider_args, fp32_model)
        started = self.session.get_providers()[0]
        if trt_fp16 and started == "TensorrtExecutionProvider":
            self.precision = "fp16"
        elif trt_fp16 and started in GPU_PROVIDERS:
            # TensorRT did not start but CUDA did: give CUDA the fp16 graph
            model = self._transformed(fp32_model, to_fp16, wanted)
            if self.precision == "fp16":
                self.session = self._session(ort, model, so, provider_args[1:], fp32_model)
        elif self.precision == "fp16" and started not in GPU_PROVIDERS:
            # the GPU provider did not start: an fp16 graph on CPU is only slower
            self.precision = "fp32"
            self.session = self._session(ort, fp32_model, so, provider_args, fp32_model)

    def _transformed(self, model: Union[str, bytes], transform: Callable[[bytes], bytes],
                     precision: str) -> Union[str, bytes]:
        """``transform`` applied to the model's bytes, ``self.precision`` set; the model unchanged
        (fp32, one warning) when the ``onnx`` package is missing or the transform fails."""
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        try:
            out = transform(data)
        except ImportError:
            _warn_once(("no-onnx", precision), "%s needs the 'onnx' Python package (pip install "
                       "onnx): the models run in fp32", precision)
            return model
        except Exception as exc:  # a graph the converter cannot handle: keep fp32
            LOG.warning("%s: %s conversion failed (%s: %s): running fp32", self.name, precision,
                        type(exc).__name__, str(exc)[:200])
            return model
        self.precision = precision
        return out

    def _session(self, ort, model: Union[str, bytes], so, provider_args: List,
                 fp32_model: Union[str, bytes]):
        """An InferenceSession; an fp16 graph that does not load falls back to ``fp32_model``.
        OpenVINO, where onnxruntime does not offer it, through :class:`OpenVinoSession`; a
        graph it cannot compile runs on the next provider (warning)."""
        if provider_args[0] == OPENVINO and OPENVINO not in ort.get_available_providers():
            try:
                return OpenVinoSession(model, self.threads)
            except Exception as exc:  # OpenVINO raises RuntimeError and its own types
                LOG.warning("%s: OpenVINO cannot run this model (%s: %s): onnxruntime runs it",
                            self.name, type(exc).__name__, str(exc)[:200])
                return self._session(ort, model, so, provider_args[1:], fp32_model)
        try:
            return ort.InferenceSession(model, sess_options=so, providers=provider_args)
        except Exception as exc:  # onnxruntime raises several exception types
            if self.precision == "fp16":
                LOG.warning("%s: the fp16 graph does not load (%s: %s): running fp32", self.name,
                            type(exc).__name__, str(exc)[:200])
                self.precision = "fp32"
                return self._session(ort, fp32_model, so, provider_args, fp32_model)
            raise ModelLoadError(f"could not load ONNX model {self.path}: "
                                 f"{type(exc).__name__}: {str(exc)[:300]}"
                                 f"{provision_hint(self.path)}") from exc

    # ------------------------------------------------------------------ shapes
    @property
    def input_shape(self) -> Shape:
        """Shape of the (first) input; ``None`` where dynamic."""
        return self.input_shapes[0]

    @property
    def compiles_per_batch(self) -> bool:
        """True where a new batch size costs a build on its first run (GPU providers: engines
        and algorithm searches; OpenVINO: one compiled model per shape)."""
        return self.provider in GPU_PROVIDERS or self.provider == OPENVINO

    @property
    def dynamic_batch(self) -> bool:
        """True when the first input's batch dimension is dynamic (batches > 1 allowed)."""
        return self.input_shape[0] is None

    def describe(self) -> str:
        ins = ", ".join(f"{n}{list(s)}" for n, s in zip(self.input_names, self.input_shapes))
        outs = ", ".join(f"{n}{list(s)}" for n, s in zip(self.output_names, self.output_shapes))
        return f"{self.path.name}: inputs {ins}; outputs {outs}"

    def check_input_shape(self, expected: Sequence[Optional[int]]) -> None:
        if len(self.inputs) != 1:
            raise ModelLoadError(f"{self.describe()}: expected exactly one input")
        if not _shape_matches(self.input_shape, expected):
            raise ModelLoadError(f"{self.describe()}: input shape {list(self.input_shape)} does "
                                 f"not match the expected {list(expected)}")

    def check_output_shapes(self, expected: Sequence[Sequence[Optional[int]]]) -> None:
        for e in expected:
            if not any(_shape_matches(s, e) for s in self.output_shapes):
                raise ModelLoadError(f"{self.describe()}: no output of shape {list(e)}")

    def find_output(self, name: Optional[str] = None,
                    shape: Optional[Sequence[Optional[int]]] = None,
                    where: Optional[Callable[[Shape], bool]] = None) -> int:
        """Index of the one output with this name, or matching this shape (``None`` = any
        size in that dimension), or for which ``where(shape)`` holds. Raises ``ModelLoadError``
        listing the outputs when none or several match."""
        if name is not None:
            if name in self.output_names:
                return self.output_names.index(name)
            raise ModelLoadError(f"{self.describe()}: no output named '{name}'")
        if shape is not None:
            hits = [i for i, s in enumerate(self.output_shapes) if _shape_matches(s, shape)]
            what = f"shape {list(shape)}"
        elif where is not None:
            hits = [i for i, s in enumerate(self.output_shapes) if where(s)]
            what = "the given condition"
        else:
            raise ValueError("find_output needs name, shape or where")
        if len(hits) != 1:
            raise ModelLoadError(f"{self.describe()}: {len(hits)} outputs match {what}, "
                                 f"expected exactly one")
        return hits[0]

    # ------------------------------------------------------------------ running
    def run(self, feed: Union[np.ndarray, Mapping[str, np.ndarray]],
            outputs: Optional[Sequence[str]] = None) -> List[np.ndarray]:
        """Run the model. ``feed``: the input array (single-input models) or a name -> array
        dict. Returns all outputs in the model's order (or those named in ``outputs``)."""
        if isinstance(feed, np.ndarray):
            feed = {self.input_names[0]: feed}
        first = feed.get(self.input_names[0]) if self.input_names else None
        batch = int(first.shape[0]) if getattr(first, "ndim", 0) else 1
        with INFERENCE_CLOCK.running(self.name, batch):
            return self.session.run(outputs, feed)

    def warmup(self, batch: int = 1) -> None:
        """One inference on zeros (dynamic dimensions other than batch taken as 1)."""
        feed = {}
        for inp, shape in zip(self.inputs, self.input_shapes):
            dims = [batch if (i == 0 and d is None) else (d or 1) for i, d in enumerate(shape)]
            dtype = np.float32 if "float" in inp.type else np.int64
            feed[inp.name] = np.zeros(dims, dtype)
        self.session.run(None, feed)

    def __repr__(self) -> str:
        return (f"OnnxModel({self.path.name}, provider={self.provider}, "
                f"precision={self.precision}, threads={self.threads})")
