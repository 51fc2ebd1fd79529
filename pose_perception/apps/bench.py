"""``pose-perception bench``: the ROS-free pipeline's speed and memory.

``bench`` runs :class:`~pose_perception.core.perception.Perception` on N frames (the built-in
sample, or recorded RGB-D frames with ``--data``), looping the source with increasing stamps.
Warm-up frames are excluded. It prints per-stage and end-to-end latency (p50, p95, mean), frames
per second, the execution provider and peak RSS as a table; ``--json`` adds one JSON object as
the last line (``fps``, ``latency_ms`` {p50, p95, mean, max}, ``provider``, ``peak_rss_mb``,
``stages`` {stage: p50 ms}, ``stages_mean``, ``people_per_frame``, ``cpu_ms_per_frame``,
``hardware``, ``model_threads`` (each model's intra-op threads), ``command``...).
``--no-lift`` measures body + face alone (no depth lifting, no tracking). ``--mediapipe`` also
measures body + face alone (``body_face``) and then the same frames - same count, order and
warm-up - through MediaPipe 0.10.14 itself (pose + head-crop face mesh, video mode;
``tools/mediapipe_bench.py`` in the oracle environment, another process), and adds
``mediapipe``, ``speed_ratio`` (our body + face fps / MediaPipe's) and ``speed_ratio_per_person``
(the same times people found per frame) to the JSON.

``soak`` (long runs: memory growth, latency drift) is ``soak.py``; what both share is
``bench_common.py``.

Latencies are wall-clock per ``Perception.process`` call, in this process, with nothing else
running in it; on a machine whose cores are shared the numbers vary from run to run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.overlap import OVERLAP_MODES, overlap_wanted
from .bench_common import (PreparedSource, add_common_arguments, command_line, current_rss_mb,
                           hardware_info, make_perception, parse_providers, peak_rss_mb, percentile,
                           prepare_source, rounded, run_and_print)

STAGES = ("detect", "body", "face", "hands", "lift", "track", "interaction", "body_language",
          "total")
# the frame split in two: wall time in which some model ran, and the rest (e2e - inference)
SPLIT = ("inference", "non_inference")
EXIT_NO_MEDIAPIPE = 4          # bench --mediapipe: MediaPipe could not be run


# ------------------------------------------------------------------------------------ bench
def measure(per, src: PreparedSource, n: int, warm: int, lift: bool = True,
            overlap: bool = False) -> Dict[str, Any]:
    """Run ``warm + n`` frames of ``src`` (looped) through ``per``; the last ``n`` measured.
    ``lift`` False: no depth is passed, so nothing is lifted to 3D. ``overlap``: as the node
    runs them, frame N finished beside the models of frame N+1
    (:class:`~pose_perception.core.overlap.OverlappedPerception`); a frame's e2e is then from
    its detection's start to its finish's end."""
    from ..core.worker import INFERENCE_CLOCK
    from ..sources.sample import looped

    done: List[Tuple[float, Any]] = []            # (e2e ms, result) of measured frames
    runner = None
    if overlap:
        from ..core.overlap import OverlappedPerception
        runner = OverlappedPerception(
            per, lambda res, i: done.append((res.timings_ms["total"], res)) if i >= warm
            else None)
    t_measure = cpu_measure = inference0 = None
    models0: Dict[str, Any] = {}
    try:
        for i, (k, stamp) in enumerate(looped(src.seq, warm + n)):
            if i == warm:
                if runner is not None:
                    runner.flush()               # the warm-up's last frame is not measured
                t_measure, cpu_measure = time.perf_counter(), time.process_time()  # all threads
                inference0 = INFERENCE_CLOCK.total_ms()
                models0 = INFERENCE_CLOCK.by_model()
            args = (src.rgb[k], stamp, src.depth[k] if lift else None,
                    src.cameras[k] if lift else None)
            if runner is not None:
                runner.submit(*args, context=i)
                continue
            t0 = time.perf_counter()
            res = per.process(*args)
            if i >= warm:
                done.append(((time.perf_counter() - t0) * 1e3, res))
        if runner is not None:
            runner.flush()
        wall = time.perf_counter() - t_measure
        cpu = time.process_time() - cpu_measure
        inference_ms = INFERENCE_CLOCK.total_ms() - inference0
        models = {name: m.since(models0.get(name))
                  for name, m in INFERENCE_CLOCK.by_model().items()}
    finally:
        if runner is not None:
            runner.close()
    stage_ms: Dict[str, List[float]] = {s: [] for s in STAGES + SPLIT}
    e2e = [dt for dt, _ in done]
    for dt, res in done:
        for s in STAGES:
            stage_ms[s].append(float(res.timings_ms.get(s, 0.0)))
        inference = float(res.timings_ms.get("inference", 0.0))
        stage_ms["inference"].append(inference)
        stage_ms["non_inference"].append(max(0.0, dt - inference))
    return {
        "fps": rounded(n / wall if wall > 0 else float("nan")),
        "overlap": bool(overlap),
        "latency_ms": {"p50": rounded(percentile(e2e, 50)), "p95": rounded(percentile(e2e, 95)),
                       "mean": rounded(float(np.mean(e2e))), "max": rounded(float(np.max(e2e)))},
        "stages": {s: rounded(percentile(v, 50)) for s, v in stage_ms.items()},
        "stages_p95": {s: rounded(percentile(v, 95)) for s, v in stage_ms.items()},
        "stages_mean": {s: rounded(float(np.mean(v))) for s, v in stage_ms.items()},
        "people_per_frame": rounded(float(np.mean([len(r.persons) for _, r in done])), 3),
        "faces_per_frame": rounded(float(np.mean([len(r.faces) for _, r in done])), 3),
        "cpu_ms_per_frame": rounded(cpu / n * 1e3),
        "cpu_utilisation": rounded(cpu / wall if wall > 0 else float("nan")),
        # share of the measured wall time in which no model ran
        "non_inference_share": rounded(max(0.0, 1.0 - inference_ms / (wall * 1e3)), 3)
        if wall > 0 else None,
        "models": per_model(models, n),
    }


def per_model(models: Dict[str, Any], n: int) -> List[Dict[str, Any]]:
    """Each model that ran while measuring (``ModelTime`` since the start), per measured frame:
    calls, inputs (summed batch sizes) and milliseconds of its runs, and ms per call; the
    costliest (ms per frame) first."""
    return [{"model": name, "calls_per_frame": rounded(m.calls / n, 3),
             "inputs_per_frame": rounded(m.inputs / n, 3), "ms_per_frame": rounded(m.ms / n),
             "ms_per_call": rounded(m.ms / m.calls)}
            for name, m in sorted(models.items(), key=lambda kv: -kv[1].ms) if m.calls > 0]


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
                          precision=args.precision, interaction=not args.no_interaction,
                          body_language=not args.no_body_language)
    n = int(args.frames)
    warm = args.warmup if args.warmup is not None else min(10, max(1, n // 2))
    overlap = overlap_wanted(args.overlap, per.provider)
    ours = measure(per, src, n, warm, lift, overlap)
    result: Dict[str, Any] = {
        "source": src.label,
        "synthetic_depth": bool(src.seq.synthetic_depth),
        "frames": n,
        "warmup_frames": warm,
        **ours,
        "lift_and_track": lift,
        "frame_overlap": args.overlap,
        "provider": per.provider,
        "precision": per.precision,
        "providers_requested": providers,
        "threads": args.threads,
        "threads_effective": args.threads or default_threads(),
        "model_threads": {m.name: m.threads for m in getattr(per.keypoints, "models", [])},
        "face": not args.no_face,
        "hands": bool(args.hands),
        "interaction": not args.no_interaction,
        "body_language": not args.no_body_language,
        "people_requested": args.people if args.data is None else None,
        "peak_rss_mb": rounded(peak_rss_mb(), 1),
        "rss_source_mb": rounded(rss_source, 1),
        "rss_end_mb": rounded(current_rss_mb(), 1),
        "hardware": hardware_info(),
        "command": command_line("bench", argv),
    }
    if getattr(args, "body_language_cost", False):
        result["body_language_cost"] = body_language_cost(per, src, n, warm, args, providers)
    if getattr(args, "mediapipe", False):
        per.close()
        if lift:    # the comparison needs body + face alone as well
            per = make_perception(providers, args.threads, not args.no_face, args.hands,
                                  tracking=False, precision=args.precision)
            result["body_face"] = measure(per, src, n, warm, lift=False, overlap=overlap)
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
            result["speed_ratio"] = rounded(bf["fps"] / mp["fps"], 3) if mp.get("fps") else None
            # people found per second: MediaPipe's pose finds at most one person per frame
            per_s = mp["fps"] * mp["people_per_frame"] if mp.get("fps") else 0.0
            result["speed_ratio_per_person"] = rounded(
                bf["fps"] * bf["people_per_frame"] / per_s, 3) if per_s > 0 else None
    return result


def body_language_cost(per, src: PreparedSource, n: int, warm: int, args,
                       providers) -> Dict[str, Any]:
    """The same frames with and without body language, alternating (on, off, on, off: the
    machine's drift hits both alike); ``ratio`` = mean fps on / mean fps off."""
    off = make_perception(providers, args.threads, not args.no_face, args.hands,
                          precision=args.precision, interaction=not args.no_interaction,
                          body_language=False)
    overlap = overlap_wanted(args.overlap, per.provider)    # both pipelines share providers
    try:
        fps: Dict[str, List[float]] = {"on": [], "off": []}
        for _ in range(2):
            for key, p in (("on", per), ("off", off)):
                p.reset()
                fps[key].append(float(measure(p, src, n, warm, overlap=overlap)["fps"]))
    finally:
        off.close()
    on, no = float(np.mean(fps["on"])), float(np.mean(fps["off"]))
    return {"fps_on": [rounded(v) for v in fps["on"]], "fps_off": [rounded(v) for v in fps["off"]],
            "ratio": rounded(on / no, 3) if no > 0 else None}


class MediapipeUnavailable(RuntimeError):
    """The MediaPipe oracle environment could not be had, or its benchmark failed."""


def run_mediapipe(src: PreparedSource, n: int, warm: int, face: bool = True) -> Dict[str, Any]:
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
    lines += [f"  {'e2e':<8} {_fmt(lat['p50'])} {_fmt(lat['p95'])} {_fmt(lat['mean'])}"]
    if not r["overlap"]:     # overlapped, a frame's time also holds the next frame's models
        for s, what in zip(SPLIT, ("  of which some model runs", "  and no model runs")):
            lines.append(f"  {what:<26} {_fmt(r['stages'][s])} {_fmt(r['stages_p95'][s])} "
                         f"{_fmt(r['stages_mean'][s])}")
    lines += [f"  not inference: {100 * r['non_inference_share']:.1f} % of the time measured, "
              "no model running (crops, decoding, lifting, tracking, association, interaction)",
              ""]
    lines += format_models(r.get("models") or [], r.get("model_threads") or {})
    lines += [
              f"  throughput {r['fps']} frames/s; peak RSS {r['peak_rss_mb']} MB (process; "
              f"{r['rss_source_mb']} MB with the frames loaded before the pipeline, "
              f"{r['rss_end_mb']} MB at the end)",
              "  (detect runs every few frames, so its p50 can be 0: see its mean)",
              "  frames overlapped as the node runs them: frame N's lifting, tracking and body "
              "language beside the models of frame N+1; e2e = one frame's detection start to its "
              "finish end (--overlap never: one Perception.process call after the other)"
              if r["overlap"] else "  frames one after the other (--overlap never, or auto on "
              "a CPU): e2e = one Perception.process call"]
    if r["synthetic_depth"]:
        lines.append("  note: the built-in sample's depth is SYNTHETIC (generated)")
    if r.get("body_language_cost"):
        c = r["body_language_cost"]
        lines += ["", "  body language (gestures, pointing, posture, falls) on / off, alternating: "
                      f"{c['fps_on']} / {c['fps_off']} frames/s: ratio {c['ratio']}"]
    if "body_face" in r:
        lines += ["", format_comparison(r)]
    return "\n".join(lines)


def format_models(models: List[Dict[str, Any]], threads: Dict[str, int]) -> List[str]:
    """The per-model table (``per_model``; ``threads``: each model's intra-op threads), with a
    blank line after it; nothing without models."""
    if not models:
        return []
    lines = [f"  {'model':<28} {'calls/f':>8} {'inputs/f':>9} {'ms/f':>8} {'ms/call':>8} "
             f"{'threads':>7}"]
    for m in models:
        lines.append(f"  {m['model']:<28} {m['calls_per_frame']:>8.2f} "
                     f"{m['inputs_per_frame']:>9.2f} {_fmt(m['ms_per_frame'])} "
                     f"{_fmt(m['ms_per_call'])} {threads.get(m['model'], '?'):>7}")
    lines += ["  (each model's own run time; runs on two threads at once overlap, so these can "
              "add up to more than 'some model runs')", ""]
    return lines


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
              "ours: intra-op threads per model as in the model table (+ a worker thread when "
              "parallel); MediaPipe: its default, one XNNPACK thread per model (graph nodes may "
              "overlap). 'cores' = CPU time / wall time; load average at the start "
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
    p.add_argument("--overlap", choices=OVERLAP_MODES, default="auto",
                   help="as pose_node's frame_overlap: 'always' finishes frame N (lifting, "
                        "tracking, body language) beside the models of frame N+1, 'never' runs "
                        "one Perception.process call after the other, 'auto' (default, as the "
                        "node) overlaps on GPU execution providers only")
    p.add_argument("--body-language-cost", action="store_true",
                   help="also run the same frames without gestures, pointing, posture and falls "
                        "(alternating, twice each) and print the frame-rate ratio")
    add_common_arguments(p)
    args = p.parse_args(argv)
    if args.body_language_cost and (args.no_body_language or args.no_lift):
        p.error("--body-language-cost compares with and without body language: leave out "
                "--no-body-language and --no-lift")
    if args.frames < 1:
        p.error("--frames must be >= 1")
    if args.mediapipe and args.hands:
        p.error("--mediapipe compares body + face: leave out --hands")
    if args.data is not None and args.people != 1:
        p.error("--people applies to the built-in sample only")
    result = run_and_print("bench", run_bench, format_bench, args, argv)
    if result is None:
        return 1
    if result.get("mediapipe_error"):
        print(f"pose-perception bench: {result['mediapipe_error']}", file=sys.stderr)
        return EXIT_NO_MEDIAPIPE
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
