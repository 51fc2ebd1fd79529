"""The demo's body-language script: a SYNTHETIC skeleton (``sources.kinematic_body``) acting out
every gesture, a posture change and a fall, run through the package's own
``core.body_language.BodyLanguageTracker`` at 15 Hz, as ``people/interaction`` and
``people/events`` would report it. The built-in sample's person is a still photo walking, so it
shows postures only; this script shows the rest. No images, no models: skeletons with exact 3D,
seen by a camera 1.2 m high, 3 m away.

Its records feed the same timeline as the live graph's (``demo_pictures``):
``body_language_script.png``, and a summary of what was recognised against what was acted.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..core.body_language import BodyLanguageTracker, gesture_words
from ..core.types import Person
from ..sources.kinematic_body import (ARM_CROSSED, ARM_DOWN, ARM_PALM_UP, ARM_RAISED, SITTING,
                                      Scene, body_points, rot)
from .demo_records import POSTURE_ORDER, DemoLog, EventRec, InteractionRec

RATE_HZ = 15.0
ARM_SIDEWAYS = ((0.28, 0.0, 0.05), (0.55, 0.05, 0.10))    # straight, out to the side
# (start s, end s, what is acted); the poses are in _pose()
SCRIPT: List[Tuple[float, float, str]] = [
    (0.0, 2.0, "standing, arms down"),
    (2.0, 4.0, "left hand raised"),
    (4.0, 7.0, "waving (right hand, 2 Hz)"),
    (7.0, 9.0, "both hands raised"),
    (9.0, 11.0, "arms crossed"),
    (11.0, 13.0, "pointing to the side (left arm)"),
    (13.0, 16.0, "sitting on a chair"),
    (16.0, 17.0, "standing"),
    (17.0, 17.6, "falling backwards"),
    (17.6, 21.0, "lying on the floor"),
]


def _pose(t: float) -> Tuple[dict, dict]:
    """(body_points arguments, world_points arguments) of the script at ``t``."""
    down = (ARM_DOWN, ARM_DOWN)
    if 2.0 <= t < 4.0:
        return {"arms": (ARM_RAISED, ARM_DOWN)}, {}
    if 4.0 <= t < 7.0:
        elbow, wrist = ARM_PALM_UP
        dx = 0.08 * math.sin(2.0 * math.pi * 2.0 * (t - 4.0))
        return {"arms": (ARM_DOWN, (elbow, (wrist[0] + dx, wrist[1], wrist[2])))}, {}
    if 7.0 <= t < 9.0:
        return {"arms": (ARM_RAISED, ARM_RAISED)}, {}
    if 9.0 <= t < 11.0:
        return {"arms": (ARM_CROSSED, ARM_CROSSED)}, {}
    if 11.0 <= t < 13.0:
        return {"arms": (ARM_SIDEWAYS, ARM_DOWN)}, {}
    if 13.0 <= t < 16.0:
        return dict(SITTING, arms=down), {"hip_height": 0.48}
    if t >= 17.0:
        s = min(1.0, (t - 17.0) / 0.6) ** 2
        return {"arms": down}, {"turn": rot((1, 0, 0), -90.0 * s)}
    return {"arms": down}, {}


def run_script(track_id: int = 1) -> DemoLog:
    """The script through a BodyLanguageTracker: one InteractionRec per frame, its events."""
    scene = Scene()
    tracker = BodyLanguageTracker()
    log = DemoLog(source="body-language script (SYNTHETIC skeletons, exact 3D)", synthetic=True)
    n = int(round(SCRIPT[-1][1] * RATE_HZ))
    for i in range(n):
        t = i / RATE_HZ
        body_kw, world_kw = _pose(t)
        kp = scene.keypoints(scene.world_points(body_points(**body_kw), **world_kw))
        torso = kp.xyz[[11, 12, 23, 24]].mean(axis=0)
        person = Person(kp, np.array([0.0, 0.0, 1.0, 1.0]), 0.9, track_id=track_id,
                        centroid=torso)
        bodies, events = tracker.update([person], t, scene.up)
        b = bodies[track_id]
        log.published.append((i, t))
        log.interaction.append(InteractionRec(
            t, track_id, False, math.nan, "UNKNOWN", 0.0, POSTURE_ORDER[int(b.posture)],
            tuple(gesture_words(g) for g in b.gestures)))
        for e in events:
            what = "fall" if e.kind == "fall" else (
                e.gesture.name.replace("_", " ") + (" started" if e.kind == "gesture_started"
                                                    else " ended"))
            log.events.append(EventRec(e.stamp_s, e.track_id, what))
    return log


def acted_vs_seen(log: DemoLog) -> List[Dict[str, object]]:
    """Per scripted segment: what was acted, and the postures and gestures reported in it."""
    out = []
    for t0, t1, acted in SCRIPT:
        recs = [r for r in log.interaction if t0 <= r.stamp < t1]
        out.append({"from_s": t0, "to_s": t1, "acted": acted,
                    "postures": sorted({r.posture for r in recs}),
                    "gestures": sorted({g for r in recs for g in r.gestures}),
                    "events": [f"{e.stamp:.2f} s {e.what}" for e in log.events
                               if t0 <= e.stamp < t1]})
    return out


def format_script(rows: List[Dict[str, object]]) -> str:
    lines = ["  body-language script (SYNTHETIC skeleton, the core's BodyLanguageTracker at "
             f"{RATE_HZ:g} Hz): acted -> reported"]
    for r in rows:
        seen = ", ".join(list(r["postures"]) + list(r["gestures"])) or "-"
        ev = ("; events: " + ", ".join(r["events"])) if r["events"] else ""
        lines.append(f"    {r['from_s']:5.1f}-{r['to_s']:4.1f} s  {r['acted']:<32} -> {seen}{ev}")
    return "\n".join(lines)


def write_body_language_script(out_dir: Path, files: List[Path]) -> List[Dict[str, object]]:
    """Run the script; its timeline (``body_language_script.png``) and rows
    (``body_language_script.json``) into ``out_dir`` (appended to ``files``)."""
    from .demo_pictures import plot_body_language_timeline

    log = run_script()
    rows = acted_vs_seen(log)
    for name in ("body_language_script.png", "body_language_script.json"):
        path = out_dir / name
        if name.endswith(".png"):
            plot_body_language_timeline(log, path)
        else:
            path.write_text(json.dumps(rows, indent=2) + "\n")
        files.append(path)
    return rows
