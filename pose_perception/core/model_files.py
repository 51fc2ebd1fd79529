"""Model files (ROS-free): where a model is (a path, or a provisioned name looked up in the model
store), how to re-create a missing one, and what TensorRT needs from its graph (the batch
profile) and where it caches engines. :class:`pose_perception.core.inference.OnnxModel` loads
them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union


def trt_cache_dir() -> Path:
    try:
        from .model_store import cache_root
        return cache_root() / "trt_engines"
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "pose_perception" / "trt_engines"


def provision_hint(path: Path) -> str:
    """'; run `pose-perception provision` ...' when ``path`` is named like a provisioned model
    (so a missing or corrupt file says how to re-create it), else ''."""
    try:
        from .model_store import MODELS, PROVISION_HINT
    except ImportError:  # pragma: no cover
        return ""
    if path.stem not in MODELS:
        return ""
    if path.is_file():      # present but unusable: convert again
        return f"; the file is damaged or incomplete: {PROVISION_HINT} to re-create it"
    return f"; {PROVISION_HINT} to create it"


def resolve_model_path(name_or_path: Union[str, Path]) -> Path:
    """An existing file path as is; otherwise a provisioned model name (``pose_detection.onnx``)
    looked up through ``model_store`` (``$POSE_PERCEPTION_MODEL_DIR`` or
    ``~/.cache/pose_perception/models``)."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if p.is_absolute() or len(p.parts) > 1:
        raise FileNotFoundError(f"model file {p} does not exist{provision_hint(p)}")
    try:
        from .model_store import model_path  # provided by the provisioning module
    except ImportError:  # pragma: no cover - only before model_store exists
        model_path = None
    if model_path is not None:
        return Path(model_path(str(name_or_path)))
    base = Path(os.environ.get("POSE_PERCEPTION_MODEL_DIR",
                               Path.home() / ".cache" / "pose_perception" / "models"))
    cand = base / p.name
    if not cand.suffix:
        cand = cand.with_suffix(".onnx")
    if not cand.is_file():
        raise FileNotFoundError(
            f"model '{name_or_path}' not found (looked for {cand}); provision the models first "
            f"or set POSE_PERCEPTION_MODEL_DIR")
    return cand


def trt_batch_profile(path: Path, max_batch: Optional[int]) -> Dict[str, str]:
    """TensorRT optimisation-profile options for batches 1..``max_batch`` of a model whose only
    dynamic input dimension is the batch ({} otherwise, or without the ``onnx`` package)."""
    if not max_batch:
        return {}
    try:
        import onnx
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # no onnx package, unreadable file (the session reports that)
        return {}
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1:
        return {}
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in inputs[0].type.tensor_type.shape.dim]
    if not dims or dims[0] is not None or any(d is None for d in dims[1:]):
        return {}
    rest = "".join(f"x{d}" for d in dims[1:])
    name = inputs[0].name
    return {"trt_profile_min_shapes": f"{name}:1{rest}",
            "trt_profile_opt_shapes": f"{name}:1{rest}",
            "trt_profile_max_shapes": f"{name}:{int(max_batch)}{rest}"}
