"""``pose-perception bench-ros``: the node measured through ROS topics at camera rate.

Recorded RGB-D frames (default: ``rgbd_dev/realsense_two_people`` of the development data when
present, else the built-in sample) are published at ``--rate`` Hz (colour + depth + CameraInfo,
same stamps, stamped at publication) to ``pose_node``, run in a subprocess (default) or in this
process (``--in-process``). A collector subscribes to ``people/skeletons`` and measures, after a
warm-up:

- processed rate (skeleton arrays per second) and input rate,
- dropped frames (published - processed) and their share,
- end-to-end latency p50 / p95 / max: image stamp -> skeletons received by the collector (so it
  includes the DDS hop; the node's own diagnostics report stamp -> publish),
- max lag in frames: how many newer frames had been published when a result arrived.

``--core N`` first runs the ROS-free pipeline (``bench``'s measure, the node's settings) on the
same frames for N frames, in this process with nothing else running, and reports the ratios:
processed rate / min(core rate, camera rate) (a node cannot process more frames than the camera
sends) and ROS p95 latency / core p95 latency.

``--json`` prints one JSON object as the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..core.overlap import OVERLAP_MODES, overlap_wanted


def default_source() -> str:
    data = Path(os.environ.get("POSE_PERCEPTION_DATA",
                               Path(__file__).resolve().parents[3] / "shared" / "data"))
    for cand in (data / "rgbd_dev" / "realsense_two_people", data / "rgbd_dev" / "tue_hsr"):
        if cand.is_dir():
            return str(cand)
    return ""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pose-perception bench-ros", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=None, help="RGB-D folder ('' = built-in sample; "
                    "default: rgbd_dev/realsense_two_people of the development data)")
    ap.add_argument("--rate", type=float, default=30.0, help="camera rate [Hz] (default 30)")
    ap.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds ignored after the first "
                    "result")
    ap.add_argument("--in-process", action="store_true", help="run pose_node in this process")
    ap.add_argument("--cpu", action="store_true",
                    help="no GPU providers (use_gpu false: the CPU ones of --providers)")
    ap.add_argument("--providers", default=None,
                    help="the node's providers (and the core reference's), comma-separated, "
                         "e.g. 'openvino,cpu' (default: the node's)")
    ap.add_argument("--no-face", action="store_true", help="enable_face false")
    ap.add_argument("--startup-timeout", type=float, default=60.0,
                    help="seconds to wait for the node's first result")
    ap.add_argument("--dds-transport", choices=("large_data", "default"), default="large_data",
                    help="Fast DDS transports of camera and node: 'large_data' (the default here; "
                    "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA, recommended for images on one "
                    "machine) or 'default' (whatever the environment says)")
    ap.add_argument("--core", type=int, default=0, metavar="N",
                    help="first measure the ROS-free pipeline on the same frames (N frames) and "
                    "report the ratios to it")
    ap.add_argument("--overlap", choices=OVERLAP_MODES, default="auto",
                    help="the node's frame_overlap, and the --core reference's: 'always' (frame "
                    "N finished beside the models of frame N+1), 'never' (one frame at a time), "
                    "'auto' (the default, as the node's: overlapped on GPU providers only)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as last line")
    ap.add_argument("node_args", nargs="*", help="extra ROS arguments for pose_node after '--', "
                    "e.g. -- -p sync_slop_s:=0.05")
    return ap


def summarise(latencies_ms: List[float], lags: List[int], published: int, processed: int,
              seconds: float) -> Dict[str, object]:
    """The report numbers from the raw measurements."""
    lat = np.asarray(latencies_ms, float)

    def pct(q):
        return round(float(np.percentile(lat, q)), 2) if lat.size else None
    return {
        "published": int(published), "processed": int(processed),
        "input_rate_hz": round(published / seconds, 2) if seconds > 0 else None,
        "processed_rate_hz": round(processed / seconds, 2) if seconds > 0 else None,
        "dropped": int(max(0, published - processed)),
        "drop_fraction": round(max(0, published - processed) / published, 3) if published else None,
        "latency_ms": {"p50": pct(50), "p95": pct(95),
                       "max": round(float(lat.max()), 2) if lat.size else None},
        "max_lag_frames": int(max(lags)) if lags else None,
    }


def node_providers(requested: Optional[List[str]], cpu: bool) -> Optional[List[str]]:
    """The providers pose_node runs with ``providers`` = ``requested`` (None: its default) and
    ``use_gpu`` = not ``cpu`` (None: the pipeline's default)."""
    from ..core.inference import DEFAULT_PROVIDERS, run_providers
    if requested is None and not cpu:
        return None
    return list(run_providers(requested or DEFAULT_PROVIDERS, not cpu))


def core_reference(source: str, frames: int, face: bool, providers: Optional[List[str]],
                   frame_overlap: str = "auto") -> Dict[str, object]:
    """The ROS-free pipeline with the node's settings on the same frames: ``fps`` and
    ``latency_ms`` (``bench``'s numbers; ``providers`` and ``frame_overlap`` as the node's)."""
    from .bench import measure
    from .bench_common import make_perception, prepare_source

    src = prepare_source(source or None, None, 1)
    per = make_perception(providers, None, face, False)
    overlap = overlap_wanted(frame_overlap, per.provider)
    try:
        r = measure(per, src, frames, min(10, frames), overlap=overlap)
    finally:
        per.close()
    return {"fps": r["fps"], "latency_ms": r["latency_ms"], "frames": frames,
            "overlap": overlap}


def compare_to_core(report: Dict[str, object], core: Dict[str, object]) -> None:
    """Add the ratios of the ROS numbers to the core's to ``report``."""
    ceiling = min(float(core["fps"]), float(report["camera_rate_hz"]))
    rate = report.get("processed_rate_hz")
    p95, core_p95 = report["latency_ms"]["p95"], core["latency_ms"]["p95"]
    report["core"] = core
    report["rate_ratio"] = round(rate / ceiling, 3) if rate and ceiling > 0 else None
    report["p95_ratio"] = round(p95 / core_p95, 3) if p95 and core_p95 else None


def run(args: argparse.Namespace) -> Dict[str, object]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from ..msg import SkeletonArray
    from ..ros.conversions import stamp_to_ns
    from ..ros.sample_camera_node import SampleCameraNode, load_frames
    from .bench_common import parse_providers

    source = default_source() if args.source is None else args.source
    frames, desc = load_frames(source)
    requested = parse_providers(args.providers)
    core = (core_reference(source, args.core, not args.no_face,
                           node_providers(requested, args.cpu), args.overlap)
            if args.core else None)
    node_params = {"use_gpu": not args.cpu, "enable_face": not args.no_face,
                   "qos_reliability": "reliable", "frame_overlap": args.overlap}
    if requested:
        node_params["providers"] = requested
    if args.dds_transport == "large_data":   # before rclpy.init; the node subprocess inherits it
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
    rclpy.init()
    proc = None
    nodes = []
    try:
        cam_params = [Parameter("rate_hz", value=float(args.rate)),
                      Parameter("loop", value=True)]
        cam = SampleCameraNode(frames, node_name="bench_camera", description=desc,
                               parameter_overrides=cam_params)
        nodes.append(cam)
        if args.in_process:
            from ..ros.pose_node import PoseNode
            pose = PoseNode(parameter_overrides=[Parameter(k, value=v)
                                                 for k, v in node_params.items()])
            nodes.append(pose)
            provider = str(getattr(pose.perception, "provider", "?"))
        else:
            cmd = [sys.executable, "-m", "pose_perception.cli", "node", "--ros-args"]
            for k, v in node_params.items():
                cmd += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
            cmd += list(args.node_args)
            env = dict(os.environ)
            pkg_parent = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent,
                                                            env.get("PYTHONPATH", "")) if p)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, env=env)
            provider = "unknown (no /diagnostics received)"
        collector = rclpy.create_node("bench_collector")
        nodes.append(collector)
        node_diag: Dict[str, str] = {}

        def on_diag(msg):
            for st in msg.status:
                if st.name == "pose_perception: pose_node":
                    node_diag.update({kv.key: kv.value for kv in st.values})
        from diagnostic_msgs.msg import DiagnosticArray
        collector.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        received: List[tuple] = []   # (wall receive ns, stamp ns, newest published index)
        collector.create_subscription(
            SkeletonArray, "people/skeletons",
            lambda m: received.append((collector.get_clock().now().nanoseconds,
                                       stamp_to_ns(m.header.stamp), cam.index - 1)), 10)
        ex = SingleThreadedExecutor()
        for n in nodes:
            ex.add_node(n)
        deadline = time.monotonic() + args.startup_timeout
        while not received:
            ex.spin_once(timeout_sec=0.05)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("pose_node exited: " + (proc.stderr.read() or "")[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"no result from pose_node within {args.startup_timeout} s")
        t_warm = time.monotonic() + args.warmup
        while time.monotonic() < t_warm:
            ex.spin_once(timeout_sec=0.01)
        first_index, n_recv0 = cam.index, len(received)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.duration:
            ex.spin_once(timeout_sec=0.01)
        seconds = time.monotonic() - t0
        last_index = cam.index
        cam.timer.cancel()
        t_drain = time.monotonic() + 1.0
        while time.monotonic() < t_drain:
            ex.spin_once(timeout_sec=0.01)
        stamp_to_index = {int(round(s * 1e9)): i for i, s in cam.published}
        lat, lags, processed = [], [], 0
        for recv_ns, stamp_ns, newest in received[n_recv0:]:
            idx = stamp_to_index.get(stamp_ns)
            if idx is None or not first_index <= idx < last_index:
                continue
            processed += 1
            lat.append((recv_ns - stamp_ns) * 1e-6)
            lags.append(max(0, newest - idx))
        report = summarise(lat, lags, last_index - first_index, processed, seconds)
        provider = node_diag.get("execution provider", provider)
        report.update({"source": desc, "camera_rate_hz": args.rate,
                       "fastdds_builtin_transports":
                           os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "(default)"),
                       "mode": ("in-process" if args.in_process else "subprocess")
                       + f", frame_overlap {node_diag.get('frame overlap', args.overlap)}",
                       "provider": provider, "measured_s": round(seconds, 2),
                       "node_latency_p50_p95_max_ms": node_diag.get(
                           "end-to-end (image stamp -> published) latency p50/p95/max [ms]"),
                       # where the node's time goes: its own per-step latencies (diagnostics)
                       "node_steps_p50_p95_max_ms": {
                           k.replace(" latency p50/p95/max [ms]", ""): v
                           for k, v in node_diag.items() if k.endswith("p50/p95/max [ms]")
                           and not k.startswith("end-to-end")}})
        if core is not None:
            compare_to_core(report, core)
        return report
    finally:
        # the node process first: deleting our DDS participant while a peer is alive but
        # silent can deadlock in Fast DDS's TCP transport (LARGE_DATA; stop.exit_if_stuck), and
        # once seen here; with the peer gone its sockets are closed and nothing waits on them
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for n in nodes:
            n.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = run(args)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"bench-ros: {exc}", file=sys.stderr)
        return 1
    lat = report["latency_ms"]
    print(f"source: {report['source']} ({report['mode']}, provider: {report['provider']}, "
          f"FASTDDS_BUILTIN_TRANSPORTS={report['fastdds_builtin_transports']})")
    print(f"camera {report['camera_rate_hz']:g} Hz for {report['measured_s']} s: published "
          f"{report['published']}, processed {report['processed']} "
          f"({report['processed_rate_hz']} Hz), dropped {report['dropped']} "
          f"({report['drop_fraction']})")
    print(f"end-to-end latency (image stamp -> skeletons received) p50 {lat['p50']} ms, p95 "
          f"{lat['p95']} ms, max {lat['max']} ms; max lag {report['max_lag_frames']} frames")
    if report.get("node_latency_p50_p95_max_ms"):
        print(f"node's own stamp -> publish latency p50/p95/max: "
              f"{report['node_latency_p50_p95_max_ms']} ms (last 300 frames)")
    for step, text in (report.get("node_steps_p50_p95_max_ms") or {}).items():
        print(f"  node step {step:<28} p50/p95/max {text} ms")
    if report.get("core"):
        c = report["core"]
        how = "frames overlapped" if c["overlap"] else "one frame at a time"
        print(f"core pipeline on the same frames ({c['frames']} frames, this process, {how}): "
              f"{c['fps']} frames/s, latency p50 {c['latency_ms']['p50']} ms, p95 "
              f"{c['latency_ms']['p95']} ms")
        print(f"through ROS / core: processed rate {report['rate_ratio']}x of min(core rate, "
              f"camera rate); p95 latency {report['p95_ratio']}x")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
