"""What ``bench`` and ``soak`` share: memory and hardware facts, percentiles, the pipeline and the
frame source they measure, and their common command-line options."""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..core.precision import PRECISIONS


def peak_rss_mb() -> float:
    """Peak resident set size of this process (``getrusage``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mb() -> float:
    """Current resident set size (``/proc/self/statm``; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", "r", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> List[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] \
        if out.returncode == 0 else []


def hardware_info() -> Dict[str, Any]:
    """CPU model, cores (logical, usable by this process), GPU names, and onnxruntime."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    info: Dict[str, Any] = {"cpu": _cpu_model(), "cores": os.cpu_count() or 1,
                            "cores_usable": usable, "gpus": _gpu_names(),
                            "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        import onnxruntime as ort
        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = list(ort.get_available_providers())
    except ImportError:  # pragma: no cover - a dependency
        pass
    info["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return info


def percentile(values: Sequence[float], q: float) -> float:
    a = np.asarray(values, np.float64)
    return float(np.percentile(a, q)) if a.size else float("nan")


def rounded(x: float, nd: int = 2) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def command_line(prog: str, argv: Sequence[str]) -> str:
    return " ".join(["pose-perception", prog] + [shlex.quote(a) for a in argv])


def parse_providers(text: Optional[str]) -> Optional[List[str]]:
    if not text:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    from ..core.inference import provider_name
    for n in names:
        provider_name(n)               # raises ValueError naming the valid choices
    return names


def make_perception(providers: Optional[List[str]], threads: Optional[int], face: bool,
                    hands: bool, tracking: bool = True, precision: str = "auto",
                    interaction: bool = True, body_language: bool = True):
    """The core pipeline with the benchmark's settings (``tracking`` False: no id tracking nor
    smoothing, i.e. the keypoint stage alone plus face-body association; ``interaction``
    False: no irises, gaze, attention nor engagement; ``body_language`` False: no gestures,
    pointing, posture nor falls)."""
    from ..core.perception import Perception, PerceptionConfig

    kp: Dict[str, Any] = {"enable_face": face, "enable_hands": hands, "precision": precision,
                          "enable_gaze": bool(interaction)}
    if providers:
        kp["providers"] = providers
    if threads:
        kp["threads"] = threads
    return Perception(PerceptionConfig.from_dict({"keypoints": kp,
                                                  "enable_tracking": bool(tracking),
                                                  "enable_interaction": bool(interaction),
                                                  "enable_body_language": bool(body_language)}))


@dataclass
class PreparedSource:
    """A source's frames ready to feed the pipeline (decoding done before timing)."""

    label: str
    rgb: List[np.ndarray]
    depth: List[Optional[np.ndarray]]
    cameras: List[Any]
    seq: Any


def prepare_source(data: Optional[str], frames: Optional[int], people: int) -> PreparedSource:
    from ..sources.sample import load_source

    seq = load_source(data, frames=frames if data is not None else None, people=people)
    cams, cache = [], {}
    for f in seq.frames:
        key = id(f.camera_info)
        if key not in cache:
            cache[key] = seq.camera(f)
        cams.append(cache[key])
    return PreparedSource(seq.label(), [f.rgb for f in seq.frames],
                          [f.depth_m for f in seq.frames], cams, seq)


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="RGB-D folder (color/ + depth/ + camera_info.yaml, or <frame>/rgb.png + "
                        "depth.npy + camera_info.yaml); default: the built-in sample")
    p.add_argument("--people", type=int, choices=(1, 2, 3), default=1,
                   help="people in the built-in sample's frames")
    p.add_argument("--no-face", action="store_true", help="disable face landmarks")
    p.add_argument("--hands", action="store_true", help="enable hand keypoints")
    p.add_argument("--no-interaction", action="store_true",
                   help="no irises, gaze, attention nor engagement")
    p.add_argument("--no-body-language", action="store_true",
                   help="no gestures, pointing, posture nor falls")
    p.add_argument("--providers", default=None,
                   help="comma-separated execution providers in order of preference, e.g. "
                        "'cuda,cpu' or 'tensorrt,cuda,cpu' (default: the pipeline's)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="model precision (default auto: fp16 on GPU providers, fp32 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="frames run before measuring (default: 10, fewer for tiny runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def run_and_print(prog: str, run, fmt, args: argparse.Namespace, argv: Sequence[str]
                  ) -> Optional[Dict[str, Any]]:
    """``run(args, argv)``'s result, printed with ``fmt`` (and as JSON, last line, with
    ``--json``); None after printing why when the source or an option is unusable."""
    try:
        result = run(args, argv)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"pose-perception {prog}: {exc}", file=sys.stderr)
        return None
    print(fmt(result), flush=True)
    if args.json:
        print(json.dumps(result, sort_keys=True), flush=True)
    return result
