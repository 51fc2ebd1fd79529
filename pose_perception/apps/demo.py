"""``pose-perception demo`` (``make demo``): the real ROS 2 graph on a sample, with pictures.

In one process, on one ``SingleThreadedExecutor`` (pose_node processes frames in its own worker
thread; with rclpy's MultiThreadedExecutor the callbacks fought over the GIL and the node
stalled for up to 2 s at a time):

    sample_camera  ->  pose_node  ->  safety_monitor
         (colour + depth + CameraInfo)   (SkeletonArray)   (SafetyStatus)
                            \\-> people/skeletons, people/faces, people/debug_image -> recorder

The recorder node collects every output; at the end ``demo_output/`` (``--out``) holds:

- ``frames/frame_NNNN.png``: a few annotated frames (the node's debug image: skeletons, face
  points, track ids and distances, plus a banner with the safety state),
- ``contact_sheet.png``: up to 16 annotated frames in a grid,
- ``top_view.png``: people's 3D keypoints and tracks seen from above, with the safety monitor's
  warning and protective distances,
- ``skeletons_3d.png``: 3D skeletons of a few frames,
- ``safety_timeline.png``: closest distance and safety state over time (for the built-in sample
  also the true distance it was generated with),
- ``interaction_timeline.png``: per person, the angle between their gaze and the camera, when
  they look at it, and their engagement state over time (``people/interaction``),
- ``body_language_timeline.png``: per person, posture and the gestures going on over time, with
  the events (gesture started / ended, falls) of ``people/events``,
- ``body_language_script.png``: the same for a SYNTHETIC skeleton acting out every gesture, a
  posture change and a fall (``demo_body_language.py``: the built-in sample's person cannot move
  their arms), with what was acted against what was recognised in the printed summary,
- ``summary.json`` and the printed summary (people found, frames, rate, latency, safety states).

Sources: the built-in sample (default; its depth is SYNTHETIC, which every picture says),
``--data DIR`` (recorded RGB-D folders), ``--bag PATH`` (rosbag2 sqlite3/MCAP or ROS 1, read with
the ``rosbags`` library), or ``--topics [NAMESPACE]`` (live camera topics: only the pose node, the
safety monitor and the recorder run, for ``--duration`` seconds).

This module is the command (arguments, sources); the graph and its recorder are
``demo_graph.py``, the records and summary ``demo_records.py``, the pictures ``demo_pictures.py``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..core.camera_mount import static_transform_spec
from .demo_graph import GraphSetup, run_graph
from .demo_body_language import format_script, write_body_language_script
from .demo_pictures import write_outputs
from .demo_records import format_summary

DEFAULT_OUT = "demo_output"
# where the built-in sample's camera sits on the robot: 1.5 m up, looking along base_link's x
SAMPLE_ROBOT_FRAME = "base_link"
SAMPLE_CYCLE = 48          # frames of the built-in sample's walk (3.4 m -> 0.9 m -> 3.4 m)


# ---------------------------------------------------------------------------------- main
def build_setup(args: argparse.Namespace) -> GraphSetup:
    from ..sources import sample

    pose: Dict[str, Any] = {"enable_face": not args.no_face, "enable_hands": args.hands,
                            "debug_image": True, "publish_markers": False}
    if args.providers:
        pose["providers"] = [p.strip() for p in args.providers.split(",") if p.strip()]
    if args.cpu:
        pose["use_gpu"] = False
    if args.precision:
        pose["precision"] = args.precision
    safety: Dict[str, Any] = {"robot_frame": args.robot_frame or ""}
    if args.topics is not None:
        pose["camera_namespace"] = args.topics
        if args.robot_frame is None:
            safety["robot_frame"] = ""
        return GraphSetup(None, f"live topics under {args.topics}", False, 0.0, pose, safety,
                          duration_s=args.duration, face=not args.no_face)
    if args.bag or args.data:
        src = args.bag or args.data
        if args.bag and not sample.is_bag(args.bag):
            raise ValueError(f"--bag {args.bag}: not a rosbag2 folder (metadata.yaml) or a "
                             ".mcap/.db3/.bag file")
        seq = sample.load_source(src, frames=args.frames)
        return GraphSetup(seq.frames, seq.label(), seq.synthetic_depth, args.rate or 10.0,
                          pose, safety, face=not args.no_face)
    seq = sample.builtin_sample(frames=SAMPLE_CYCLE, people=args.people)
    n = args.frames or SAMPLE_CYCLE
    frames = [seq.frames[i % len(seq)] for i in range(n)]     # the walk cycle, repeated
    if args.robot_frame is None:
        safety["robot_frame"] = SAMPLE_ROBOT_FRAME
        safety["static_transforms"] = [static_transform_spec(
            SAMPLE_ROBOT_FRAME, seq.frame_id, sample.SAMPLE_CAMERA_MOUNT)]
    print(f"demo: {sample.sample_frames_summary(seq)}\n      {seq.description}", flush=True)
    return GraphSetup(frames, seq.label(), True, args.rate or 10.0, pose, safety,
                      truth=seq.extra.get("true_distance_lateral_m"),
                      camera_height_m=sample.CAMERA_HEIGHT_M, face=not args.no_face)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pose-perception demo",
        description="Run the ROS 2 graph (sample camera -> pose node -> safety monitor) and save "
                    "annotated frames, 3D plots and a summary.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="RGB-D folder(s) as in rgbd_dev")
    src.add_argument("--bag", default=None, help="rosbag2 (sqlite3/MCAP) or ROS 1 bag")
    src.add_argument("--topics", nargs="?", const="/camera", default=None, metavar="NAMESPACE",
                     help="live camera topics under NAMESPACE (default /camera): run only the "
                          "pose node and the safety monitor for --duration seconds")
    p.add_argument("--frames", type=int, default=None,
                   help="frames to publish (sample: default 48 = one walk cycle, fewer = its "
                        "start, more = repeated; folders: all; bags: 300)")
    p.add_argument("--people", type=int, choices=(1, 2, 3), default=1,
                   help="people in the built-in sample")
    p.add_argument("--rate", type=float, default=None, help="publishing rate [Hz] (default 10)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to listen (--topics)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--robot-frame", default=None,
                   help="safety monitor's robot frame (TF needed); default: base_link with the "
                        "sample's camera mount, else the camera frame (3D distances)")
    p.add_argument("--no-face", action="store_true", help="disable face landmarks")
    p.add_argument("--hands", action="store_true", help="enable hand keypoints")
    p.add_argument("--providers", default=None, help="e.g. 'cuda,cpu'")
    p.add_argument("--cpu", action="store_true", help="CPU only")
    p.add_argument("--precision", default=None, choices=("fp32", "fp16", "auto"),
                   help="model precision on GPU providers (default: the node's, auto)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (last line)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.frames is not None and args.frames < 1:
        print("pose-perception demo: --frames must be >= 1", file=sys.stderr)
        return 2
    if args.people != 1 and (args.data or args.bag or args.topics is not None):
        print("pose-perception demo: --people applies to the built-in sample only",
              file=sys.stderr)
        return 2
    try:
        import rclpy  # noqa: F401
        from .. import msg  # noqa: F401
    except Exception as exc:  # ImportError or a type-support library that does not load
        print(f"pose-perception demo: ROS 2 Python (rclpy) or the built pose_perception "
              f"messages are not available: {exc}\nRun `make setup` (or `make demo`), or source "
              "a ROS 2 install and the colcon workspace.", file=sys.stderr)
        return 1
    try:
        setup = build_setup(args)
        log = run_graph(setup)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"pose-perception demo: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    summary, files = write_outputs(log, out)
    summary["body_language_script"] = script = write_body_language_script(out, files)
    print(format_summary(summary, out, files), flush=True)
    print(format_script(script), flush=True)
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if log.frames or setup.frames is None else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
