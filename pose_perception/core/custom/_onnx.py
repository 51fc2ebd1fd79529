"""onnxruntime session factory and model-metadata checks shared by the custom-model families.

Every check raises :class:`ModelMetadataError` naming the model file and the mismatch, so a wrong
config fails at load time rather than producing garbage keypoints.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

Dim = Optional[int]   # None = dynamic (symbolic or unknown) dimension


class ModelMetadataError(ValueError):
    """The ONNX model does not match its configuration (input size, outputs, layout...)."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: Tuple[Dim, ...]
    dtype: str


def resolve_model_path(path: str | os.PathLike, base_dir: Optional[Path] = None) -> Path:
    """Expand ``~``/``$VARS``; a relative path is looked up in ``base_dir`` (if given and the file
    is there), then in the model directory (``$POSE_PERCEPTION_MODEL_DIR`` or
    ``~/.cache/pose_perception/models``)."""
    from ..model_store import model_dir

    p = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if p.is_absolute():
        return p
    if base_dir is not None and (base_dir / p).is_file():
        return base_dir / p
    return model_dir() / p


def create_session(path: str | os.PathLike, providers: Optional[Sequence[str]] = None,
                   threads: Optional[int] = None):
    """An onnxruntime ``InferenceSession`` through the package's :class:`~..inference.OnnxModel`
    (provider fallback, thread settings); CPU unless ``providers`` asks for more, e.g.
    ``["cuda", "cpu"]``."""
    from ..inference import ModelLoadError, OnnxModel

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        model = OnnxModel(path, providers=tuple(providers) if providers else ("cpu",),
                          threads=threads, warmup=False)
    except ModelLoadError as exc:
        raise ModelMetadataError(f"{path.name}: onnxruntime cannot load the model: {exc}") \
            from exc
    return model.session


def _dims(shape) -> Tuple[Dim, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def inputs_of(session) -> List[TensorInfo]:
    return [TensorInfo(a.name, _dims(a.shape), a.type) for a in session.get_inputs()]


def outputs_of(session) -> List[TensorInfo]:
    return [TensorInfo(a.name, _dims(a.shape), a.type) for a in session.get_outputs()]


def metadata_of(session) -> Dict[str, str]:
    """The model's ``metadata_props`` (Ultralytics writes imgsz, kpt_shape, names...)."""
    try:
        return dict(session.get_modelmeta().custom_metadata_map)
    except Exception:  # pragma: no cover - very old onnxruntime
        return {}


def parse_meta_value(text: str):
    """Python-literal metadata value (e.g. ``'[17, 3]'``) or the raw string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def fmt_shape(shape: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_image_input(session, model_name: str, input_size: Tuple[int, int],
                      input_layout: str) -> Tuple[TensorInfo, bool]:
    """Validate the single image input (rank 4, 3 channels, H and W equal to the config where the
    model fixes them). Returns the input and whether its batch dimension is dynamic."""
    ins = inputs_of(session)
    if len(ins) != 1:
        raise ModelMetadataError(
            f"{model_name}: expected one image input, the model has {len(ins)}: "
            + ", ".join(f"{i.name}{fmt_shape(i.shape)}" for i in ins))
    inp = ins[0]
    if "float" not in inp.dtype:
        raise ModelMetadataError(f"{model_name}: input '{inp.name}' is {inp.dtype}, "
                                 "expected a float tensor")
    if len(inp.shape) != 4:
        raise ModelMetadataError(f"{model_name}: input '{inp.name}' has rank {len(inp.shape)} "
                                 f"{fmt_shape(inp.shape)}, expected rank 4 ({input_layout})")
    if input_layout == "NCHW":
        c, h, w = inp.shape[1], inp.shape[2], inp.shape[3]
    else:
        h, w, c = inp.shape[1], inp.shape[2], inp.shape[3]
    if c is not None and c != 3:
        raise ModelMetadataError(
            f"{model_name}: input '{inp.name}' {fmt_shape(inp.shape)} has {c} channels where "
            f"input_layout {input_layout} puts them; expected 3 (wrong input_layout?)")
    cw, ch = input_size
    if (w is not None and w != cw) or (h is not None and h != ch):
        raise ModelMetadataError(
            f"{model_name}: input '{inp.name}' is {fmt_shape(inp.shape)} ({input_layout}), i.e. "
            f"width {w if w is not None else '?'} x height {h if h is not None else '?'}, but the "
            f"config says input_size [width, height] = [{cw}, {ch}]")
    return inp, inp.shape[0] is None


def check_normalisation(model_name: str, mean, std) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and std must be stated (3 values or 1), std non-zero."""
    if mean is None or std is None:
        raise ModelMetadataError(
            f"{model_name}: no input normalisation configured: set 'mean' and 'std' (pixel units "
            "0-255, in the model's channel order), e.g. ImageNet RGB mean [123.675, 116.28, "
            "103.53], std [58.395, 57.12, 57.375]; or mean [0, 0, 0], std [255, 255, 255] for "
            "inputs in [0, 1]")
    m = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), (3,)).copy()
    s = np.broadcast_to(np.asarray(std, np.float32).reshape(-1), (3,)).copy()
    if np.any(s == 0) or not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)):
        raise ModelMetadataError(f"{model_name}: invalid normalisation mean={mean} std={std}")
    return m, s


def pick_output(outputs: Sequence[TensorInfo], model_name: str, name: Optional[str],
                what: str) -> TensorInfo:
    """The output called ``name``, with a clear error listing the outputs when absent."""
    for o in outputs:
        if o.name == name:
            return o
    raise ModelMetadataError(
        f"{model_name}: no output named '{name}' ({what}); outputs: "
        + ", ".join(f"{o.name}{fmt_shape(o.shape)}" for o in outputs))


def describe_outputs(outputs: Sequence[TensorInfo]) -> str:
    return ", ".join(f"{o.name}{fmt_shape(o.shape)}" for o in outputs)
