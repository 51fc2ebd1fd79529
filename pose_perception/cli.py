"""The ``pose-perception`` command: one entry point with subcommands.

Every subcommand imports its module lazily, so ``pose-perception provision`` works before the ROS
build exists and the ROS-free ones never import rclpy.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, List, Optional, Tuple

# name -> (module, function, one-line help); functions take argv (list[str]), return an exit code
COMMANDS: Dict[str, Tuple[str, str, str]] = {
    "provision": ("pose_perception.provision", "main",
                  "download, convert, validate and cache the ONNX models (+ manifest)"),
    "node": ("pose_perception.ros.pose_node", "main",
             "run the pose perception node (ROS args after --ros-args)"),
    "lift": ("pose_perception.ros.lifting_node", "main",
             "run the 3D-lifting node alone: 2D skeletons + depth in, 3D skeletons out"),
    "safety": ("pose_perception.ros.safety_monitor_node", "main", "run the safety monitor node"),
    "fusion": ("pose_perception.ros.people_fusion_node", "main",
               "run the multi-camera people fusion node (N cameras' skeletons -> one set)"),
    "camera": ("pose_perception.ros.sample_camera_node", "main",
               "publish RGB-D frames (built-in sample, a folder or a bag) as a camera would"),
    "nodes": ("pose_perception.ros.one_process", "main",
              "pose_node (+ --safety, + --sample-camera) in one process"),
    "demo": ("pose_perception.apps.demo", "main",
             "run the whole ROS graph on a sample and save pictures"),
    "bench": ("pose_perception.apps.bench", "main",
              "benchmark the core pipeline (latency, fps, memory)"),
    "bench-ros": ("pose_perception.apps.bench_ros", "main",
                  "benchmark through ROS topics at camera rate (rate, drops, latency)"),
    "bench-fusion": ("pose_perception.apps.bench_fusion", "main",
                     "benchmark multi-camera fusion (latency, rate; 4 cameras x 3 people)"),
    "soak": ("pose_perception.apps.soak", "main_soak",
             "long run: memory growth and latency drift"),
}
# the ROS nodes: exit code 0 on SIGINT / SIGTERM at any moment (pose_perception.ros.stop)
NODE_COMMANDS = ("node", "lift", "safety", "camera", "fusion", "nodes")
EVAL_COMMANDS: Dict[str, Tuple[str, str, str]] = {
    "body": ("pose_perception.apps.eval_body_face", "main_eval_body",
             "PCK@0.2, OKS, COCO AP on COCO-format keypoint annotations"),
    "face": ("pose_perception.apps.eval_body_face", "main_eval_face",
             "NME-68/NME-51 on COCO-style 68-point annotations"),
    "lift3d": ("pose_perception.apps.eval_lift3d", "main",
               "MPJPE of 3D lifting on Human3.6M-style data with rendered depth"),
    "detect": ("pose_perception.apps.eval_detect", "main",
               "person recall of the published person boxes on COCO-style person boxes"),
    "precision": ("pose_perception.apps.eval_precision", "main",
                  "fp16 (emulated on CPU, or on a GPU) against fp32: keypoint deviations"),
}


def _usage() -> str:
    lines = ["usage: pose-perception <command> [args]", "", "commands:"]
    lines += [f"  {name:<11} {info[2]}" for name, info in COMMANDS.items()]
    lines += [f"  eval {name:<6} {info[2]}" for name, info in EVAL_COMMANDS.items()]
    lines += ["", "Run 'pose-perception <command> --help' for a command's options."]
    return "\n".join(lines)


def _resolve(table: Dict[str, Tuple[str, str, str]], name: str) -> Callable[[List[str]], int]:
    module, func, _ = table[name]
    return getattr(importlib.import_module(module), func)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "eval":
        if not rest or rest[0] not in EVAL_COMMANDS:
            print(_usage(), file=sys.stderr)
            return 2
        return int(_resolve(EVAL_COMMANDS, rest[0])(rest[1:]) or 0)
    if cmd not in COMMANDS:
        print(f"pose-perception: unknown command '{cmd}'\n\n{_usage()}", file=sys.stderr)
        return 2
    if cmd in NODE_COMMANDS:   # stop signals handled before the node's imports (exit 0)
        from .ros.stop import run_entry
        return run_entry(COMMANDS[cmd][0], rest)
    return int(_resolve(COMMANDS, cmd)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
