"""``pose-perception soak``: the whole pipeline over thousands of frames (the sample looped, with a
bag-loop reset - stamps jumping back - every few loops); reports the resident memory after warm-up
versus at the end (``rss_growth_mb``, target < 20 MB) and the drift of the p95 latency
(``p95_drift_pct``, target < 10 %): the p95 of every window of frames, a least-squares line through
them, and its change from the first to the last window relative to its start. One window's p95
rests on a few dozen slow frames (person-detector frames), so first-vs-last alone (also reported,
``p95_first_ms``/``p95_last_ms``) mostly measures noise on a shared machine.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .bench_common import (add_common_arguments, command_line, current_rss_mb, hardware_info,
                           make_perception, parse_providers, peak_rss_mb, percentile,
                           prepare_source, rounded, run_and_print)

RSS_GROWTH_TARGET_MB = 20.0
P95_DRIFT_TARGET_PCT = 10.0


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
                          precision=args.precision, interaction=not args.no_interaction,
                          body_language=not args.no_body_language)
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
        "rss_after_warmup_mb": rounded(rss_after_warmup, 1),
        "rss_end_mb": rounded(rss_end, 1),
        "rss_growth_mb": rounded(growth, 2),
        "rss_mid_mb": rounded(rss_mid, 1),
        "rss_growth_second_half_mb": rounded(rss_end - rss_mid, 2) if rss_mid else None,
        "peak_rss_mb": rounded(peak_rss_mb(), 1),
        "p95_first_ms": rounded(first),
        "p95_last_ms": rounded(last),
        "p95_drift_pct": rounded(drift, 1),
        "p95_windows_ms": [rounded(v) for v in p95s],
        "p50_ms": rounded(percentile(lat, 50)),
        "fps": rounded(n / wall if wall > 0 else float("nan")),
        "targets": {"rss_growth_mb": RSS_GROWTH_TARGET_MB, "p95_drift_pct": P95_DRIFT_TARGET_PCT},
        "pass": bool(growth < RSS_GROWTH_TARGET_MB and drift < P95_DRIFT_TARGET_PCT),
        "provider": per.provider,
        "precision": per.precision,
        "hardware": hardware_info(),
        "command": command_line("soak", argv),
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
    add_common_arguments(p)
    args = p.parse_args(argv)
    if args.data is not None and args.people != 1:
        p.error("--people applies to the built-in sample only")
    result = run_and_print("soak", run_soak, format_soak, args, argv)
    if result is None:
        return 1
    return 3 if (args.strict and not result["pass"]) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_soak())
