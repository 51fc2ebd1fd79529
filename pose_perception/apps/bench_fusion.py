"""``pose-perception bench-fusion``: latency and rate of multi-camera people fusion.

A synthetic scene (default 4 cameras x 3 people, BlazePose-33, depth noise growing with the
square of the distance, some model-filled and missing points, cameras' stamps up to 20 ms
apart, people walking) is fused frame after frame as the ``people_fusion`` node does at 30 Hz.
Printed: the core fusion time per fused frame (association + fusion + tracking) and, where
the ROS messages are built, the node's message work too (each camera's SkeletonArray -> people
-> fusion frame, and the fused SkeletonArray), as p50 / p95 / max in ms, and the rate one core
could sustain.
"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional

import numpy as np

from ..core.frames import transform_frame
from ..core.people_fusion import CameraPeople, PeopleFusion
from ..core.types import SOURCE_DEPTH, SOURCE_MODEL, FrameResult, Keypoints, Person


def _scene(cameras: int, people: int, frames: int, rate_hz: float, seed: int):
    """Per frame: one CameraPeople per camera (3D in the fusion frame)."""
    rng = np.random.default_rng(seed)
    shapes = [rng.uniform(-0.25, 0.25, (33, 3)) * [0.5, 1.0, 3.5] for _ in range(people)]
    start = rng.uniform(-2, 2, (people, 2))
    vel = rng.uniform(-1.0, 1.0, (people, 2))
    offsets = rng.uniform(0, 0.02, cameras)
    out = []
    for k in range(frames):
        t = k / rate_hz
        cams = []
        for c in range(cameras):
            stamp = t - offsets[c]
            ps = []
            for i in range(people):
                centre = np.r_[start[i] + vel[i] * stamp, 1.0]
                kp = Keypoints("blazepose33", rng.uniform(0, 640, (33, 2)), np.full(33, 0.9))
                kp.init_3d()
                z = rng.uniform(1.5, 4.5)
                sigma = 0.005 * z * z
                kp.xyz[:] = centre + shapes[i] + rng.normal(0, sigma, (33, 3))
                kp.xyz_sigma[:] = sigma
                kp.xyz_source[:] = np.where(rng.random(33) < 0.15, SOURCE_MODEL, SOURCE_DEPTH)
                kp.xyz_valid[:] = rng.random(33) > 0.1
                kp.xyz[~kp.xyz_valid] = np.nan
                ps.append(Person(body=kp, box=np.array([0, 0, 100, 200.0]), score=0.9,
                                 velocity=np.r_[vel[i], 0.0]))
            cams.append(CameraPeople(f"/cam{c}", stamp, ps))
        out.append(cams)
    return out


def _summary(ms: List[float]) -> str:
    a = np.asarray(ms)
    return (f"p50 {np.percentile(a, 50):.2f} / p95 {np.percentile(a, 95):.2f} / "
            f"max {a.max():.2f} ms")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="pose-perception bench-fusion", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--people", type=int, default=3)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--rate", type=float, default=30.0, help="camera rate [Hz]")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    scene = _scene(args.cameras, args.people, args.frames, args.rate, args.seed)
    fusion = PeopleFusion()
    core_ms, fused_counts = [], []
    for cams in scene:
        now = max(c.stamp_s for c in cams)
        t0 = time.perf_counter()
        res = fusion.update(cams, now)
        core_ms.append((time.perf_counter() - t0) * 1e3)
        fused_counts.append(len(res.people))
    warm = core_ms[10:]
    print(f"fusion core, {args.cameras} cameras x {args.people} people, {args.frames} frames at "
          f"{args.rate:g} Hz: {_summary(warm)}; mean {np.mean(warm):.2f} ms -> "
          f"{1e3 / np.mean(warm):.0f} fused frames/s on one core")
    print(f"fused people per frame: {np.mean(fused_counts):.2f} (expected {args.people})")
    msg_ms = _message_work(scene[:200], fusion)
    if msg_ms is None:
        print("node message work: skipped (ROS messages not built)")
    else:
        total = np.asarray(warm[:len(msg_ms)]) + np.asarray(msg_ms[:len(warm)])
        print(f"node message work (SkeletonArray in x{args.cameras} + transform + out): "
              f"{_summary(msg_ms)}")
        print(f"fusion added per fused frame (core + messages): {_summary(list(total))}; "
              f"budget at {args.rate:g} Hz: {1e3 / args.rate:.1f} ms")
    return 0


def _message_work(scene, fusion: PeopleFusion) -> Optional[List[float]]:
    """ms per fused frame of what the node does besides the core (messages both ways)."""
    try:
        from ..msg import SkeletonArray
        from ..ros.conversions import person_to_skeleton, skeleton_msg_to_person
    except Exception:
        return None
    T = np.eye(4)
    T[:3, 3] = (0.1, 0.2, 0.3)
    out = []
    for cams in scene:
        msgs = []
        for c in cams:
            m = SkeletonArray(depth_used=True)
            m.skeletons = [person_to_skeleton(p, m.header) for p in c.people]
            msgs.append(m)
        t0 = time.perf_counter()
        for c, m in zip(cams, msgs):
            people = [skeleton_msg_to_person(s) for s in m.skeletons]
            transform_frame(FrameResult(persons=people), matrix=T, inplace=True)
        t_in = time.perf_counter() - t0
        res = fusion.update(cams, max(c.stamp_s for c in cams))      # timed in main()
        t0 = time.perf_counter()
        fused = SkeletonArray(depth_used=True)
        fused.skeletons = [person_to_skeleton(fp.person, fused.header) for fp in res.people]
        out.append((t_in + time.perf_counter() - t0) * 1e3)
    return out[10:]
