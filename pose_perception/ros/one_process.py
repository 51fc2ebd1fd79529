"""``pose_perception_nodes`` / ``pose-perception nodes``: the camera-facing nodes in ONE process.

    pose-perception nodes [--safety] [--sample-camera] [--ros-args --params-file FILE -p ...]

pose_node, and with the options the safety monitor and the sample camera, each the same node as
its own executable (same names, parameters, topics), on one ``SingleThreadedExecutor`` (or
rclpy's EventsExecutor with ``POSE_PERCEPTION_EXECUTOR=events``, see
:mod:`pose_perception.ros.run`; pose_node processes frames in its own worker thread; a
MultiThreadedExecutor made the callbacks fight over the GIL). One
process instead of two or three: one Python interpreter, one set of imports and one DDS
participant's worth of discovery; the images from the sample camera and the skeletons to the
safety monitor do not leave the process (Fast DDS delivers them in-process). Parameters come as
for the separate nodes: a parameter file keyed by node name (``/**/pose_node``,
``/**/safety_monitor``, ``/**/sample_camera``), so that each node gets its own (a ``-p`` on the
command line goes to every node, and a node refuses parameters it does not know). The launch
file's ``one_process:=true`` starts this. Exit code 0 on Ctrl-C, 1 with a one-line error for bad
parameters or missing models.
"""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence, Tuple

from .run import run_node

USAGE = ("usage: pose-perception nodes [--safety] [--sample-camera] "
         "[--ros-args --params-file FILE ...]\n"
         "pose_node (+ the safety monitor, + the sample camera) in one process; parameters per "
         "node in a parameter file (README.md: ROS interface)")
OPTIONS = ("--safety", "--sample-camera")


def split_arguments(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(our options, the ROS arguments from ``--ros-args`` on); ``ValueError`` for an option
    we do not know."""
    args = list(argv)
    cut = args.index("--ros-args") if "--ros-args" in args else len(args)
    ours, ros = args[:cut], args[cut:]
    unknown = [a for a in ours if a not in OPTIONS + ("-h", "--help")]
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; options: {', '.join(OPTIONS)}")
    return ours, ros


def make_nodes(safety: bool, sample_camera: bool) -> list:
    """The nodes, camera first (its frames then find pose_node's subscriptions ready)."""
    from .pose_node import PoseNode
    kinds = []
    if sample_camera:
        from .sample_camera_node import SampleCameraNode
        kinds.append(SampleCameraNode)
    kinds.append(PoseNode)
    if safety:
        from .safety_monitor_node import SafetyMonitorNode
        kinds.append(SafetyMonitorNode)
    nodes = []
    try:
        for kind in kinds:
            nodes.append(kind())
    except BaseException:          # one node's bad parameters: the others go too
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        ours, ros = split_arguments(args)
    except ValueError as exc:
        print(f"pose_perception_nodes: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    if "-h" in ours or "--help" in ours:
        print(USAGE)
        return 0
    return run_node("pose_perception_nodes", USAGE,
                    lambda: make_nodes("--safety" in ours, "--sample-camera" in ours), ros)


if __name__ == "__main__":
    sys.exit(main())
