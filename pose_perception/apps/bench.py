"""``pose-perception bench`` and ``pose-perception soak``: the ROS-free pipeline's speed and memory.

``bench`` runs :class:`~pose_perception.core.perception.Perception` on N frames (the built-in
sample, or recorded RGB-D frames with ``--data``), looping the source with increasing stamps.
Warm-up frames are excluded. It prints per-stage and end-to-end latency (p50, p95, mean), frames
per second, the execution provider and peak RSS as a table; ``--json`` adds one JSON object as
the last line (``fps``, ``latency_ms`` {p50, p95, mean, max}, ``provider``, ``peak_rss_mb``,
``stages`` {stage: p50 ms}, ``stages_mean``, ``people_per_frame``, ``cpu_ms_per_frame``,
``hardware``, ``command``...). ``--no-lift`` measures body + face alone (no depth lifting, no
tracking). ``--mediapipe`` also measures body + face alone (``body_face``) and then the same
frames - same count, order and warm-up - through MediaPipe 0.10.14 itself (pose + head-crop face
mesh, video mode; ``tools/mediapipe_bench.py`` in the oracle environment, another process), and
adds ``mediapipe``, ``speed_ratio`` (our body + face fps / MediaPipe's) and
``speed_ratio_per_person`` (the same times people found per frame) to the JSON.

``soak`` runs the whole pipeline over thousands of frames (the sample looped, with a bag-loop
reset - stamps jumping back - every few loops) and reports the resident memory after warm-up
versus at the end (``rss_growth_mb``, target < 20 MB) and the drift of the p95 latency
(``p95_drift_pct``, target < 10 %): the p95 of every window of frames, a least-squares line through
them, and its change from the first to the last window relative to its start. One window's p95
rests on a few dozen slow frames (person-detector frames), so first-vs-last alone (also reported,
``p95_first_ms``/``p95_last_ms``) mostly measures noise on a shared machine.

Latencies are wall-clock per ``Perception.process`` call, in this process, with nothing else
running in it; on a machine whose cores are shared the numbers vary from run to run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..core.precision import PRECISIONS

STAGES = ("detect", "body", "face", "hands", "lift", "track", "total")
RSS_GROWTH_TARGET_MB = 20.0
P95_DRIFT_TARGET_PCT = 10.0
EXIT_NO_MEDIAPIPE = 4          # bench --mediapipe: MediaPipe could not be run


# --------------------------------------------------------------------------------- helpers
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


def _round(x: float, nd: int = 2) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _command(prog: str, argv: Sequence[str]) -> str:
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
                    interaction: bool = True):
    """The core pipeline with the benchmark's settings (``tracking`` False: no id tracking nor
    smoothing, i.e. the keypoint stage alone plus face-body association; ``interaction``
    False: no irises, gaze, attention nor engagement)."""
    from ..core.perception import Perception, PerceptionConfig

    kp: Dict[str, Any] = {"enable_face": face, "enable_hands": hands, "precision": precision,
                          "enable_gaze": bool(interaction)}
    if providers:
        kp["providers"] = providers
    if threads:
        kp["threads"] = threads
    return Perception(PerceptionConfig.from_dict({"keypoints": kp,
                                                  "enable_tracking": bool(tracking),
                                                  "enable_interaction": bool(interaction)}))


@dataclass
class _Prepared:
    """A source's frames ready to feed the pipeline (decoding done before timing)."""

    label: str
    rgb: List[np.ndarray]
    depth: List[Optional[np.ndarray]]
    cameras: List[Any]
    seq: Any


def prepare_source(data: Optional[str], frames: Optional[int], people: int) -> _Prepared:
    from ..sources.sample import load_source

    seq = load_source(data, frames=frames if data is not None else None, people=people)
    cams, cache = [], {}
    for f in seq.frames:
        key = id(f.camera_info)
        if key not in cache:
            cache[key] = seq.camera(f)
        cams.append(cache[key])
    return _Prepared(seq.label(), [f.rgb for f in seq.frames], [f.depth_m for f in seq.frames],
                     cams, seq)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="RGB-D folder (color/ + depth/ + camera_info.yaml, or <frame>/rgb.png + "
                        "depth.npy + camera_info.yaml); default: the built-in sample")
    p.add_argument("--people", type=int, choices=(1, 2, 3), default=1,
                   help="people in the built-in sample's frames")
    p.add_argument("--no-face", action="store_true", help="disable face landmarks")
    p.add_argument("--hands", action="store_true", help="enable hand keypoints")
    p.add_argument("--no-interaction", action="store_true",
                   help="no irises, gaze, attention nor engagement")
    p.add_argument("--providers", default=None,
                   help="comma-separated execution providers in order of preference, e.g. "
                        "'cuda,cpu' or 'tensorrt,cuda,cpu' (default: the pipeline's)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="model precision (default auto: fp16 on GPU providers, fp32 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="frames run before measuring (default: 10, fewer for tiny runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


# ------------------------------------------------------------------------------------ bench
def measure(per, src: _Prepared, n: int, warm: int, lift: bool = True) -> Dict[str, Any]:
    """Run ``warm + n`` frames of ``src`` (looped) through ``per``; the last ``n`` measured.
    ``lift`` False: no depth is passed, so nothing is lifted to 3D."""
    from ..sources.sample import looped

    stage_ms: Dict[str, List[float]] = {s: [] for s in STAGES}
    e2e: List[float] = []
    people: List[int] = []
    faces: List[int] = []
    t_measure = cpu_measure = None
    for i, (k, stamp) in enumerate(looped(src.seq, warm + n)):
        if i == warm:
            t_measure, cpu_measure = time.perf_counter(), time.process_time()  # all threads
        t0 = time.perf_counter()
        res = per.process(src.rgb[k], stamp, src.depth[k] if lift else None,
                          src.cameras[k] if lift else None)
        dt = (time.perf_counter() - t0) * 1e3
        if i < warm:
            continue
        e2e.append(dt)
        people.append(len(res.persons))
        faces.append(len(res.faces))
        for s in STAGES:
            stage_ms[s].append(float(res.timings_ms.get(s, 0.0)))
    wall = time.perf_counter() - t_measure
    cpu = time.process_time() - cpu_measure
    return {
        "fps": _round(n / wall if wall > 0 else float("nan")),
        "latency_ms": {"p50": _round(percentile(e2e, 50)), "p95": _round(percentile(e2e, 95)),
                       "mean": _round(float(np.mean(e2e))), "max": _round(float(np.max(e2e)))},
        "stages": {s: _round(percentile(v, 50)) for s, v in stage_ms.items()},
        "stages_p95": {s: _round(percentile(v, 95)) for s, v in stage_ms.items()},
        "stages_mean": {s: _round(float(np.mean(v))) for s, v in stage_ms.items()},
        "people_per_frame": _round(float(np.mean(people)), 3),
        "faces_per_frame": _round(float(np.mean(faces)), 3),
        "cpu_ms_per_frame": _round(cpu / n * 1e3),
        "cpu_utilisation": _round(cpu / wall if wall > 0 else float("nan")),
    }


def run_bench(args: argparse.Namespace, argv: Sequence[str]) -> Dict[str, Any]:
    """Our pipeline on the source; with ``args.mediapipe`` also body + face alone
    (``body_face``) and MediaPipe itself (``mediapipe``, ``speed_ratio``; ``mediapipe_error``
    when it cannot be run)."""
    from ..core.inference import default_threads

    providers = parse_providers(args.providers)
    src = prepare_source(args.data, None, args.people)
    gc.collect()
    rss_source = current_rss_mb()          # frames in memory, no pipeline yet
    lift = not args.no_lift
    per = make_perception(providers, args.threads, not args.no_face, args.hands, tracking=lift,
                          precision=args.precision, interaction=not args.no_interaction)
    n = int(args.frames)
    warm = args.warmup if args.warmup is not None else min(10, max(1, n // 2))
    ours = measure(per, src, n, warm, lift)
    result: Dict[str, Any] = {
        "source": src.label,
        "synthetic_depth": bool(src.seq.synthetic_depth),
        "frames": n,
        "warmup_frames": warm,
        **ours,
        "lift_and_track": lift,
        "provider": per.provider,
        "precision": per.precision,
        "providers_requested": providers,
        "threads": args.threads,
        "threads_effective": args.threads or default_threads(),
        "face": not args.no_face,
        "hands": bool(args.hands),
        "people_requested": args.people if args.data is None else None,
        "peak_rss_mb": _round(peak_rss_mb(), 1),
        "rss_source_mb": _round(rss_source, 1),
        "rss_end_mb": _round(current_rss_mb(), 1),
        "hardware": hardware_info(),
        "command": _command("bench", argv),
    }
    if getattr(args, "mediapipe", False):
        per.close()
        if lift:    # the comparison needs body + face alone as well
            per = make_perception(providers, args.threads, not args.no_face, args.hands,
                                  tracking=False, precision=args.precision)
            result["body_face"] = measure(per, src, n, warm, lift=False)
            per.close()
        else:
            result["body_face"] = ours
        result["speed_ratio"] = result["speed_ratio_per_person"] = result["mediapipe"] = None
        try:
            mp = run_mediapipe(src, n, warm, face=not args.no_face)
        except MediapipeUnavailable as exc:
            result["mediapipe_error"] = str(exc)
        else:
            result["mediapipe"] = mp
            bf = result["body_face"]
            result["speed_ratio"] = _round(bf["fps"] / mp["fps"], 3) if mp.get("fps") else None
            # people found per second: MediaPipe's pose finds at most one person per frame
            per_s = mp["fps"] * mp["people_per_frame"] if mp.get("fps") else 0.0
            result["speed_ratio_per_person"] = _round(
                bf["fps"] * bf["people_per_frame"] / per_s, 3) if per_s > 0 else None
    return result


class MediapipeUnavailable(RuntimeError):
    """The MediaPipe oracle environment could not be had, or its benchmark failed."""


def run_mediapipe(src: _Prepared, n: int, warm: int, face: bool = True) -> Dict[str, Any]:
    """The same frames, count, order and warm-up through MediaPipe 0.10.14 itself (pose +
    head-crop face mesh, video mode; ``tools/mediapipe_bench.py`` in the oracle environment,
    created on first use). Its JSON result."""
    import tempfile

    from .. import provision

    try:
        py = provision.ensure_oracle_env()
    except (provision.ProvisionError, OSError) as exc:
        raise MediapipeUnavailable(f"the MediaPipe oracle environment is unavailable: {exc}") \
            from exc
    script = provision.TOOLS_DIR / "mediapipe_bench.py"
    with tempfile.TemporaryDirectory(prefix="pose_perception_mpbench_") as tmp:
        stack = os.path.join(tmp, "frames.npy")
        np.save(stack, np.stack(src.rgb))
        cmd = [str(py), str(script), stack, "--frames", str(n), "--warmup", str(warm)]
        if not face:
            cmd.append("--no-face")
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                 timeout=120 + 2 * (n + warm))
        except subprocess.TimeoutExpired as exc:
            raise MediapipeUnavailable(f"MediaPipe benchmark timed out: {exc}") from exc
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise MediapipeUnavailable(f"MediaPipe benchmark failed (exit {out.returncode}): "
                                   f"{' '.join(cmd)}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def format_bench(r: Dict[str, Any]) -> str:
    hw = r["hardware"]
    lines = [f"pose-perception bench: {r['source']}",
             f"  {r['frames']} frames measured after {r['warmup_frames']} warm-up frames; "
             f"provider {r['provider']} ({r['precision']}); face "
             f"{'on' if r['face'] else 'off'}, hands "
             f"{'on' if r['hands'] else 'off'}, 3D lifting + tracking "
             f"{'on' if r['lift_and_track'] else 'off'}; {r['people_per_frame']} people/frame",
             f"  hardware: {hw['cpu']} ({hw['cores_usable']}/{hw['cores']} cores usable)"
             + (f", GPU {', '.join(hw['gpus'])}" if hw["gpus"] else ", no GPU"),
             "",
             f"  {'stage':<8} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}"]
    for s in STAGES:
        lines.append(f"  {s:<8} {_fmt(r['stages'][s])} {_fmt(r['stages_p95'][s])} "
                     f"{_fmt(r['stages_mean'][s])}")
    lat = r["latency_ms"]
    lines += [f"  {'e2e':<8} {_fmt(lat['p50'])} {_fmt(lat['p95'])} {_fmt(lat['mean'])}",
              "",
              f"  throughput {r['fps']} frames/s; peak RSS {r['peak_rss_mb']} MB (process; "
              f"{r['rss_source_mb']} MB with the frames loaded before the pipeline, "
              f"{r['rss_end_mb']} MB at the end)",
              "  (detect runs every few frames, so its p50 can be 0: see its mean; e2e = one "
              "Perception.process call)"]
    if r["synthetic_depth"]:
        lines.append("  note: the built-in sample's depth is SYNTHETIC (generated)")
    if "body_face" in r:
        lines += ["", format_comparison(r)]
    return "\n".join(lines)


def format_comparison(r: Dict[str, Any]) -> str:
    """The ``--mediapipe`` table: ours (body + face alone; with lifting + tracking) vs MediaPipe."""
    mp = r.get("mediapipe")
    what = "body + face" if r["face"] else "body"
    rows = [(f"ours, {what} (no lifting/tracking)", r["body_face"])]
    if r["lift_and_track"]:
        rows.append((f"ours, {what} + 3D lifting + tracking", r))
    if mp:
        mesh = " + head-crop face mesh" if r["face"] else ""
        rows.append((f"MediaPipe {mp['mediapipe']} pose{mesh}", mp))
    lines = [f"  vs MediaPipe: the same {r['frames']} frames in the same order after "
             f"{r['warmup_frames']} warm-up frames, one run after the other",
             f"  {'':<44} {'fps':>7} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7} "
             f"{'CPU ms/f':>8} {'cores':>5} {'people':>6} {'faces':>6}"]
    for name, m in rows:
        lat = m["latency_ms"]
        lines.append(f"  {name:<44} {_num(m['fps'], 7)} {_num(lat['p50'], 7)} "
                     f"{_num(lat['p95'], 7)} {_num(lat['mean'], 7)} "
                     f"{_num(m['cpu_ms_per_frame'], 8)} {_num(m['cpu_utilisation'], 5)} "
                     f"{_num(m['people_per_frame'], 6)} {_num(m['faces_per_frame'], 6)}")
    if not mp:
        lines.append(f"  MediaPipe: not measured ({r.get('mediapipe_error')})")
        return "\n".join(lines)
    hw = r["hardware"]
    lines += [f"  speed ratio (ours {what} fps / MediaPipe fps): {r['speed_ratio']}; per "
              f"person found (fps x people/frame): {r['speed_ratio_per_person']}",
              f"  CPU budget: both processes may use all {hw['cores_usable']} usable cores; "
              f"ours: {r['threads_effective']} intra-op threads per model (+ a worker thread "
              "when parallel); MediaPipe: its default, one XNNPACK thread per model (graph "
              "nodes may overlap). 'cores' = CPU time / wall time; load average at the start "
              f"{', '.join(f'{x:.2f}' for x in hw['load_average'] or [])}",
              "  MediaPipe's pose finds at most one person per frame."]
    return "\n".join(lines)


def _num(x: Any, width: int) -> str:
    return f"{x:>{width}.2f}" if isinstance(x, (int, float)) else f"{'-':>{width}}"


def _fmt(x: Optional[float]) -> str:
    return f"{x:8.2f}" if x is not None else f"{'-':>8}"


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="pose-perception bench",
                                description="Latency, throughput and memory of the ROS-free "
                                            "pipeline on the built-in sample or RGB-D frames.")
    p.add_argument("--frames", type=int, default=200, help="frames to measure (after warm-up)")
    p.add_argument("--no-lift", action="store_true",
                   help="body + face alone: no 3D lifting, no tracking")
    p.add_argument("--mediapipe", action="store_true",
                   help="also run body + face alone and MediaPipe 0.10.14 itself (pose + "
                        "head-crop face mesh, video mode) on the same frames, and compare "
                        "(creates the oracle environment on first use; exit code "
                        f"{EXIT_NO_MEDIAPIPE} when MediaPipe cannot be run)")
    _add_common(p)
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error("--frames must be >= 1")
    if args.mediapipe and args.hands:
        p.error("--mediapipe compares body + face: leave out --hands")
    if args.data is not None and args.people != 1:
        p.error("--people applies to the built-in sample only")
    try:
        result = run_bench(args, argv)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"pose-perception bench: {exc}", file=sys.stderr)
        return 1
    print(format_bench(result), flush=True)
    if args.json:
        print(json.dumps(result, sort_keys=True), flush=True)
    if result.get("mediapipe_error"):
        print(f"pose-perception bench: {result['mediapipe_error']}", file=sys.stderr)
        return EXIT_NO_MEDIAPIPE
    return 0


# ------------------------------------------------------------------------------------- soak
def run_soak(args: argparse.Namespace, argv: Sequence[str]) -> Dict[str, Any]:
    from ..sources.sample import looped

    n = int(args.frames)
    warm = args.warmup if args.warmup is not None else min(100, max(1, n // 10))
    window = args.window or max(10, (n - warm) // 10)
    if n - warm < 2 * window:
        raise ValueError(f"need at least warm-up + 2 windows of frames ({warm} + 2 x {window})")
    providers = parse_providers(args.providers)
    src = prepare_source(args.data, None, args.people)
    per = make_perception(providers, args.threads, not args.no_face, args.hands,
                          precision=args.precision, interaction=not args.no_interaction)
    lat: List[float] = []
    warnings = 0
    rss_after_warmup = rss_mid = None
    mid = warm + (n - warm) // 2
    t_start = time.perf_counter()
    for i, (k, stamp) in enumerate(looped(src.seq, n, reset_every=args.reset_every)):
        if i == warm:
            gc.collect()
            rss_after_warmup = current_rss_mb()
        elif i == mid:
            gc.collect()
            rss_mid = current_rss_mb()
        t0 = time.perf_counter()
        res = per.process(src.rgb[k], stamp, src.depth[k], src.cameras[k])
        dt = (time.perf_counter() - t0) * 1e3
        warnings += bool(res.warnings)
        if i >= warm:
            lat.append(dt)
    wall = time.perf_counter() - t_start
    gc.collect()
    rss_end = current_rss_mb()
    p95s = np.array([percentile(w, 95) for w in np.array_split(lat, len(lat) // window)])
    first, last = p95s[0], p95s[-1]
    slope, start = np.polyfit(np.arange(len(p95s)), p95s, 1)
    drift = slope * (len(p95s) - 1) / start * 100.0 if start > 0 else float("nan")
    growth = rss_end - (rss_after_warmup if rss_after_warmup is not None else rss_end)
    return {
        "source": src.label,
        "synthetic_depth": bool(src.seq.synthetic_depth),
        "frames": n,
        "warmup_frames": warm,
        "window_frames": window,
        "loop_length": len(src.rgb),
        "reset_every_loops": args.reset_every,
        "tracking_resets": int(getattr(per, "resets", 0)),
        "frames_with_warnings": warnings,
        "rss_after_warmup_mb": _round(rss_after_warmup, 1),
        "rss_end_mb": _round(rss_end, 1),
        "rss_growth_mb": _round(growth, 2),
        "rss_mid_mb": _round(rss_mid, 1),
        "rss_growth_second_half_mb": _round(rss_end - rss_mid, 2) if rss_mid else None,
        "peak_rss_mb": _round(peak_rss_mb(), 1),
        "p95_first_ms": _round(first),
        "p95_last_ms": _round(last),
        "p95_drift_pct": _round(drift, 1),
        "p95_windows_ms": [_round(v) for v in p95s],
        "p50_ms": _round(percentile(lat, 50)),
        "fps": _round(n / wall if wall > 0 else float("nan")),
        "targets": {"rss_growth_mb": RSS_GROWTH_TARGET_MB, "p95_drift_pct": P95_DRIFT_TARGET_PCT},
        "pass": bool(growth < RSS_GROWTH_TARGET_MB and drift < P95_DRIFT_TARGET_PCT),
        "provider": per.provider,
        "precision": per.precision,
        "hardware": hardware_info(),
        "command": _command("soak", argv),
    }


def format_soak(r: Dict[str, Any]) -> str:
    ok = lambda good: "ok" if good else "MISSED"  # noqa: E731
    return "\n".join([
        f"pose-perception soak: {r['source']}",
        f"  {r['frames']} frames ({r['warmup_frames']} warm-up), sample of {r['loop_length']} "
        f"frames looped, stamps jumping back every {r['reset_every_loops']} loops "
        f"({r['tracking_resets']} tracking resets); provider {r['provider']}; {r['fps']} frames/s",
        f"  RSS after warm-up {r['rss_after_warmup_mb']} MB, at the end {r['rss_end_mb']} MB: "
        f"growth {r['rss_growth_mb']} MB (target < {RSS_GROWTH_TARGET_MB:g} MB: "
        f"{ok(r['rss_growth_mb'] is not None and r['rss_growth_mb'] < RSS_GROWTH_TARGET_MB)}); "
        f"second half alone {r['rss_growth_second_half_mb']} MB",
        f"  p95 latency per window of {r['window_frames']} frames: {r['p95_windows_ms']} ms; "
        f"trend drift {r['p95_drift_pct']} % (first window {r['p95_first_ms']} ms, last "
        f"{r['p95_last_ms']} ms) "
        f"(target < {P95_DRIFT_TARGET_PCT:g} %: "
        f"{ok(r['p95_drift_pct'] is not None and r['p95_drift_pct'] < P95_DRIFT_TARGET_PCT)})",
        f"  peak RSS {r['peak_rss_mb']} MB; p50 latency {r['p50_ms']} ms",
    ])


def main_soak(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="pose-perception soak",
                                description="Long run of the whole pipeline: memory growth and "
                                            "latency drift.")
    p.add_argument("--frames", type=int, default=3000, help="frames in total (warm-up included)")
    p.add_argument("--window", type=int, default=None,
                   help="frames per latency window (default: a tenth of the measured frames)")
    p.add_argument("--reset-every", type=int, default=5,
                   help="stamps jump back (bag loop) every this many loops of the source; 0 = "
                        "never")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 3 when a target is missed")
    _add_common(p)
    args = p.parse_args(argv)
    if args.data is not None and args.people != 1:
        p.error("--people applies to the built-in sample only")
    try:
        result = run_soak(args, argv)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"pose-perception soak: {exc}", file=sys.stderr)
        return 1
    print(format_soak(result), flush=True)
    if args.json:
        print(json.dumps(result, sort_keys=True), flush=True)
    return 3 if (args.strict and not result["pass"]) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
