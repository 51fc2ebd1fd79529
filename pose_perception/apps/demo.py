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
- ``summary.json`` and the printed summary (people found, frames, rate, latency, safety states).

Sources: the built-in sample (default; its depth is SYNTHETIC, which every picture says),
``--data DIR`` (recorded RGB-D folders), ``--bag PATH`` (rosbag2 sqlite3/MCAP or ROS 1, read with
the ``rosbags`` library), or ``--topics [NAMESPACE]`` (live camera topics: only the pose node, the
safety monitor and the recorder run, for ``--duration`` seconds).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.camera_mount import static_transform_spec
from ..core.colors import track_rgb

DEFAULT_OUT = "demo_output"
# where the built-in sample's camera sits on the robot: 1.5 m up, looking along base_link's x
SAMPLE_ROBOT_FRAME = "base_link"
SAMPLE_CYCLE = 48          # frames of the built-in sample's walk (3.4 m -> 0.9 m -> 3.4 m)
STATE_RGB = {"UNKNOWN": (150, 60, 200), "CLEAR": (40, 170, 60), "WARNING": (235, 170, 0),
             "PROTECTIVE_STOP": (220, 30, 30)}


# ------------------------------------------------------------------------------ plain records
@dataclass
class PersonRec:
    track_id: int
    layout: str
    xy: np.ndarray           # (N, 2) pixels
    conf: np.ndarray         # (N,)
    xyz: np.ndarray          # (N, 3) metres in the skeletons' frame, NaN where invalid
    centroid: np.ndarray     # (3,) NaN when invalid
    has_face: bool


@dataclass
class FrameRec:
    stamp: float
    frame_id: str
    persons: List[PersonRec]
    depth_used: bool
    received: float          # wall time the recorder got it
    faces: int = 0

    @property
    def latency_ms(self) -> float:
        return (self.received - self.stamp) * 1e3


@dataclass
class SafetyRec:
    stamp: float
    received: float
    state_name: str
    speed_scale: float
    closest_distance: float
    closest_person: int
    closest_keypoint: str
    reason: str


@dataclass
class InteractionRec:
    stamp: float
    track_id: int
    looking: bool
    angle_deg: float          # NaN without a gaze
    engagement: str           # UNKNOWN, DISENGAGED, ENGAGING, ENGAGED, DISENGAGING
    level: float


@dataclass
class DemoLog:
    """Everything the demo saw, ROS-free (the pictures and the summary are made from this)."""

    source: str
    synthetic: bool
    frames: Dict[int, FrameRec] = field(default_factory=dict)      # key: stamp in ns
    images: Dict[int, np.ndarray] = field(default_factory=dict)    # annotated RGB by stamp ns
    safety: List[SafetyRec] = field(default_factory=list)
    interaction: List[InteractionRec] = field(default_factory=list)
    published: List[Tuple[int, float]] = field(default_factory=list)  # (frame index, stamp)
    wall_s: float = 0.0
    warning_m: float = 2.0
    protective_m: float = 1.0
    camera_height_m: Optional[float] = None   # known for the built-in sample
    truth: Optional[np.ndarray] = None        # sample: (frames, people, 2) true z, x (m)
    face_enabled: bool = True
    provider: str = ""
    notes: List[str] = field(default_factory=list)

    def ordered(self) -> List[FrameRec]:
        return [self.frames[k] for k in sorted(self.frames)]

    def status_for(self, stamp: float) -> Optional[SafetyRec]:
        """The last safety status computed from the perception result of ``stamp``; without
        one, the last status computed from an earlier result (at most 0.5 s older)."""
        exact = earlier = None
        for s in self.safety:
            if abs(s.stamp - stamp) < 1e-6:
                exact = s
            elif stamp - 0.5 <= s.stamp < stamp and (earlier is None or s.stamp >= earlier.stamp):
                earlier = s
        return exact or earlier

    def interaction_for(self, stamp: float) -> List[InteractionRec]:
        return [r for r in self.interaction if abs(r.stamp - stamp) < 1e-6]


def stamp_ns(t: float) -> int:
    return int(round(t * 1e9))


# ------------------------------------------------------------------- geometry for the plots
def top_view(xyz: np.ndarray) -> np.ndarray:
    """Optical-frame points (N, 3) -> (N, 2) (left, forward) metres as seen from above."""
    return np.stack([-xyz[..., 0], xyz[..., 2]], axis=-1)


def up_coordinate(xyz: np.ndarray, camera_height: Optional[float]) -> np.ndarray:
    """Height: above the floor when the camera height is known, else above the optical axis."""
    return -xyz[..., 1] + (camera_height or 0.0)


# ---------------------------------------------------------------------------- annotation
def annotate(image: np.ndarray, rec: Optional[FrameRec], status: Optional[SafetyRec],
             index: int, synthetic: bool,
             interaction: Sequence[InteractionRec] = ()) -> np.ndarray:
    """The debug image with a banner: frame, people, safety state (and SYNTHETIC DEPTH), and a
    second line per person: engagement, whether they look at the camera."""
    import cv2

    img = np.ascontiguousarray(image).copy()
    h, w = img.shape[:2]
    bar = max(22, h // 20)
    state = status.state_name if status is not None else "no status"
    colour = STATE_RGB.get(state, (90, 90, 90))
    cv2.rectangle(img, (0, 0), (w, bar), colour, -1)
    people = len(rec.persons) if rec is not None else 0
    text = f"frame {index}  people {people}  safety {state}"
    if status is not None and math.isfinite(status.closest_distance):
        text += f" {status.closest_distance:.2f} m"
    if synthetic:
        text += "  [SYNTHETIC DEPTH]"
    scale = bar / 40.0
    cv2.putText(img, text, (6, int(bar * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, int(round(scale * 2))), cv2.LINE_AA)
    if interaction:
        cv2.rectangle(img, (0, bar), (w, 2 * bar), (40, 40, 40), -1)
        line = "   ".join(
            f"id {r.track_id}: {r.engagement}" + (" LOOKING at the camera" if r.looking else "")
            for r in interaction)
        cv2.putText(img, line, (6, int(bar * 1.72)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), max(1, int(round(scale * 2))), cv2.LINE_AA)
    return img


def contact_sheet(images: Sequence[np.ndarray], cols: int = 4, thumb_w: int = 320) -> np.ndarray:
    """Images (RGB) in a grid of thumbnails, white gaps."""
    import cv2

    if not images:
        raise ValueError("contact sheet needs at least one image")
    h0, w0 = images[0].shape[:2]
    th = int(round(thumb_w * h0 / w0))
    cols = max(1, min(cols, len(images)))
    rows = (len(images) + cols - 1) // cols
    gap = 4
    sheet = np.full((rows * (th + gap) + gap, cols * (thumb_w + gap) + gap, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        t = cv2.resize(img, (thumb_w, th), interpolation=cv2.INTER_AREA)
        y, x = gap + r * (th + gap), gap + c * (thumb_w + gap)
        sheet[y:y + th, x:x + thumb_w] = t
    return sheet


# --------------------------------------------------------------------------------- plots
def _title(log: DemoLog, what: str) -> str:
    return f"{what} - {log.source}" + ("\nSYNTHETIC depth (generated, not measured)"
                                       if log.synthetic else "")


def plot_top_view(log: DemoLog, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = log.ordered()
    fig, ax = plt.subplots(figsize=(7, 7))
    for radius, name, col in ((log.protective_m, "protective", "#dc1e1e"),
                              (log.warning_m, "warning", "#ebaa00")):
        ax.add_patch(plt.Circle((0, 0), radius, fill=True, alpha=0.10, color=col))
        ax.add_patch(plt.Circle((0, 0), radius, fill=False, lw=1.5, color=col,
                                label=f"{name} distance {radius:g} m"))
    tracks: Dict[int, List[np.ndarray]] = {}
    every = max(1, len(frames) // 8)
    for i, fr in enumerate(frames):
        for p in fr.persons:
            c = top_view(p.centroid[None])[0]
            if np.all(np.isfinite(c)):
                tracks.setdefault(p.track_id, []).append(c)
            if i % every == 0:
                pts = top_view(p.xyz)
                ok = np.all(np.isfinite(pts), axis=1)
                ax.scatter(pts[ok, 0], pts[ok, 1], s=4, color=track_rgb(p.track_id),
                           alpha=0.35)
    for tid, cs in sorted(tracks.items()):
        cs = np.asarray(cs)
        ax.plot(cs[:, 0], cs[:, 1], "-o", ms=2.5, lw=1.2, color=track_rgb(tid),
                label=f"track {tid} centroid")
    if log.truth is not None and log.published:
        n = log.truth.shape[0]
        for k in range(log.truth.shape[1]):
            zx = log.truth[np.arange(n), k]
            ax.plot(-zx[:, 1], zx[:, 0], ":", color="k", lw=1,
                    label="true path (synthetic ground truth)" if k == 0 else None)
    ax.plot([0, -3 * math.tan(0.55)], [0, 3], color="0.6", lw=0.8)
    ax.plot([0, 3 * math.tan(0.55)], [0, 3], color="0.6", lw=0.8)
    ax.scatter([0], [0], marker="^", s=120, color="k", label="camera / robot")
    lim = max(3.0, log.warning_m + 0.5, *(np.nanmax(np.abs(np.asarray(v))) + 0.3
                                          for v in tracks.values()))
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-0.5, lim + 0.5)
    ax.set_aspect("equal")
    ax.invert_xaxis()                     # left of the robot is drawn on the left
    ax.set_xlabel("left of the camera [m]")
    ax.set_ylabel("forward [m]")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(_title(log, "People seen from above"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_skeletons_3d(log: DemoLog, path: Path, n_frames: int = 5) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.layouts import LAYOUTS

    frames = [f for f in log.ordered() if f.persons]
    fig = plt.figure(figsize=(9, 6.5))
    ax = fig.add_subplot(111, projection="3d")
    lims = []
    if frames:
        pick = np.unique(np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).astype(int))
        for j, i in enumerate(pick):
            alpha = 0.35 + 0.65 * (j + 1) / len(pick)
            for p in frames[i].persons:
                tv = top_view(p.xyz)
                up = up_coordinate(p.xyz, log.camera_height_m)
                pts = np.column_stack([tv[:, 1], tv[:, 0], up])     # forward, left, up
                ok = np.all(np.isfinite(pts), axis=1)
                col = track_rgb(p.track_id)
                lay = LAYOUTS.get(p.layout)
                for a, b in (lay.edges if lay else ()):
                    if a < len(ok) and b < len(ok) and ok[a] and ok[b]:
                        ax.plot(*pts[[a, b]].T, color=col, alpha=alpha, lw=1.5)
                ax.scatter(*pts[ok].T, color=col, s=5, alpha=alpha)
                if ok.any():
                    lims += [pts[ok].min(axis=0), pts[ok].max(axis=0)]
    ax.set_xlabel("forward [m]")
    ax.set_ylabel("left [m]")
    ax.set_zlabel("up [m]" + (" (floor = 0)" if log.camera_height_m else " (camera = 0)"))
    if lims:                               # equal scale on the three axes
        lo, hi = np.min(lims, axis=0), np.max(lims, axis=0)
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2 + 0.1, (0.6, 0.6, 0.6))
        for setter, c, h in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, half):
            setter(c - h, c + h)
        try:
            ax.set_box_aspect(tuple(half))
        except AttributeError:  # pragma: no cover - old matplotlib
            pass
    ax.view_init(elev=15, azim=-160)
    ax.set_title(_title(log, "3D skeletons (a few frames, later = darker)"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_safety_timeline(log: DemoLog, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    t0 = log.published[0][1] if log.published else (log.safety[0].stamp if log.safety else 0.0)
    if log.safety:
        t = np.array([s.stamp for s in log.safety]) - t0
        d = np.array([s.closest_distance for s in log.safety], float)
        d[~np.isfinite(d)] = np.nan
        ax.plot(t, d, ".", ms=3, color="k", label="closest keypoint distance (monitor)")
        for name, col in STATE_RGB.items():
            sel = np.array([s.state_name == name for s in log.safety])
            if sel.any():
                ax.scatter(t[sel], np.full(sel.sum(), -0.15), marker="s", s=14,
                           color=np.array(col) / 255.0, label=f"state {name}")
    if log.truth is not None and log.published:
        idx = np.array([k for k, _ in log.published]) % log.truth.shape[0]
        ts = np.array([s for _, s in log.published]) - t0
        for k in range(log.truth.shape[1]):
            z, x = log.truth[idx, k, 0], log.truth[idx, k, 1]
            ax.plot(ts, np.hypot(z, x), "--", lw=1, color="0.4",
                    label="true person distance (synthetic)" if k == 0 else None)
    ax.axhline(log.warning_m, color="#ebaa00", lw=1)
    ax.axhline(log.protective_m, color="#dc1e1e", lw=1)
    ax.set_xlabel("time since the first frame [s]")
    ax.set_ylabel("distance [m]")
    ax.set_ylim(bottom=-0.3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    ax.set_title(_title(log, "Safety monitor"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


ENGAGEMENT_ORDER = ("UNKNOWN", "DISENGAGED", "ENGAGING", "ENGAGED", "DISENGAGING")
ENGAGEMENT_RGB = {"UNKNOWN": (150, 150, 150), "DISENGAGED": (80, 130, 255),
                  "ENGAGING": (255, 205, 25), "ENGAGED": (25, 230, 50),
                  "DISENGAGING": (255, 130, 25)}


def plot_interaction_timeline(log: DemoLog, path: Path) -> None:
    """Gaze angle to the camera, looking, and engagement state per person over time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 5), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 1]})
    t0 = log.published[0][1] if log.published else (
        log.interaction[0].stamp if log.interaction else 0.0)
    ids = sorted({r.track_id for r in log.interaction})
    for row, tid in enumerate(ids):
        recs = [r for r in log.interaction if r.track_id == tid]
        t = np.array([r.stamp for r in recs]) - t0
        ax.plot(t, [r.angle_deg for r in recs], ".-", ms=3, lw=0.8,
                label=f"id {tid}: gaze angle to the camera")
        look = np.array([r.looking for r in recs])
        if look.any():
            ax.scatter(t[look], np.array([r.angle_deg for r in recs])[look], s=18,
                       facecolors="none", edgecolors="g", label=f"id {tid}: looking")
        for name in ENGAGEMENT_ORDER:
            sel = np.array([r.engagement == name for r in recs])
            if sel.any():
                bx.scatter(t[sel], np.full(sel.sum(), row), marker="s", s=16,
                           color=np.array(ENGAGEMENT_RGB[name]) / 255.0,
                           label=name if row == 0 else None)
    ax.set_ylabel("angle [deg]")
    ax.grid(alpha=0.3)
    if ids:
        ax.legend(fontsize=7, loc="upper right")
        bx.legend(fontsize=7, loc="upper right", ncol=5)
    bx.set_yticks(range(len(ids)), [f"id {i}" for i in ids])
    bx.set_ylim(-0.8, max(len(ids), 1) - 0.2 + 0.8)
    bx.set_xlabel("time since the first frame [s]")
    bx.set_ylabel("engagement")
    ax.set_title(_title(log, "Attention and engagement"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------- summary
def summarize(log: DemoLog) -> Dict[str, Any]:
    frames = log.ordered()
    people = [len(f.persons) for f in frames]
    lat = [f.latency_ms for f in frames]
    tracks = sorted({p.track_id for f in frames for p in f.persons if p.track_id})
    with_3d = sum(1 for f in frames for p in f.persons if np.all(np.isfinite(p.centroid)))
    states: Dict[str, int] = {}
    for s in log.safety:
        states[s.state_name] = states.get(s.state_name, 0) + 1
    per_frame_states: Dict[str, int] = {}
    for f in frames:
        st = log.status_for(f.stamp)
        if st is not None:
            per_frame_states[st.state_name] = per_frame_states.get(st.state_name, 0) + 1
    reasons: Dict[str, int] = {}
    for f in frames:
        st = log.status_for(f.stamp)
        if st is not None and st.state_name in ("UNKNOWN", "PROTECTIVE_STOP"):
            reasons[st.reason] = reasons.get(st.reason, 0) + 1
    closest = [s.closest_distance for s in log.safety if math.isfinite(s.closest_distance)]
    engagement: Dict[str, int] = {}
    for r in log.interaction:
        engagement[r.engagement] = engagement.get(r.engagement, 0) + 1
    span = (frames[-1].received - frames[0].received) if len(frames) > 1 else 0.0
    out: Dict[str, Any] = {
        "source": log.source,
        "synthetic_depth": log.synthetic,
        "frames_published": len(log.published),
        "frames_processed": len(frames),
        "processed_rate_hz": round((len(frames) - 1) / span, 2) if span > 0 else None,
        "latency_ms": ({"p50": round(float(np.percentile(lat, 50)), 1),
                        "p95": round(float(np.percentile(lat, 95)), 1),
                        "max": round(float(np.max(lat)), 1)} if lat else None),
        "people_per_frame": round(float(np.mean(people)), 2) if people else 0.0,
        "max_people": max(people) if people else 0,
        "frames_with_people": int(sum(1 for n in people if n)),
        "track_ids": tracks,
        "people_with_3d_centroid": with_3d,
        "faces_per_frame": (round(float(np.mean([f.faces for f in frames])), 2)
                            if frames and log.face_enabled else None),
        "depth_used_frames": int(sum(f.depth_used for f in frames)),
        "safety_status_messages": len(log.safety),
        "safety_states_of_frames": per_frame_states,
        "safety_states_of_messages": states,
        "safety_reasons_unknown_or_stop": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:5]),
        "closest_distance_min_m": round(min(closest), 2) if closest else None,
        "engagement_states_of_people_frames": engagement,
        "looking_at_camera_people_frames": int(sum(r.looking for r in log.interaction)),
        "warning_distance_m": log.warning_m,
        "protective_distance_m": log.protective_m,
        "provider": log.provider,
        "wall_s": round(log.wall_s, 1),
        "notes": log.notes,
    }
    if log.truth is not None and frames and log.published:
        errs = _truth_errors(log)
        if errs is not None:
            out["sample_centroid_depth_error_m"] = errs
    return out


def _truth_errors(log: DemoLog) -> Optional[Dict[str, float]]:
    """Sample only: |centroid distance - true distance| of the nearest true person, per person
    (torso joint centres sit ~0.1 m behind the generated front surface)."""
    by_stamp = {stamp_ns(s): k for k, s in log.published}
    errs = []
    for f in log.ordered():
        k = by_stamp.get(stamp_ns(f.stamp))
        if k is None:
            continue
        truth = log.truth[k % log.truth.shape[0]]
        for p in f.persons:
            c = p.centroid
            if not np.all(np.isfinite(c)):
                continue
            j = int(np.argmin(np.abs(truth[:, 1] - c[0])))
            errs.append(abs(float(c[2]) - float(truth[j, 0])))
    if not errs:
        return None
    return {"median": round(float(np.median(errs)), 3), "p95": round(float(np.percentile(
        errs, 95)), 3), "n": len(errs)}


def format_summary(s: Dict[str, Any], out_dir: Path, files: Sequence[Path]) -> str:
    lat = s["latency_ms"] or {}
    lines = [
        f"pose-perception demo: {s['source']}",
        f"  frames: {s['frames_published']} published, {s['frames_processed']} processed "
        f"({s['processed_rate_hz']} Hz), depth used in {s['depth_used_frames']}",
        f"  latency camera stamp -> skeletons received: p50 {lat.get('p50')} ms, p95 "
        f"{lat.get('p95')} ms (provider {s['provider'] or 'unknown'})",
        f"  people: {s['people_per_frame']} per frame (max {s['max_people']}), "
        f"{s['frames_with_people']} frames with people, track ids {s['track_ids']}"
        + (f"; faces {s['faces_per_frame']} per frame" if s["faces_per_frame"] is not None
           else ""),
        f"  safety (warning {s['warning_distance_m']:g} m, protective "
        f"{s['protective_distance_m']:g} m): per processed frame {s['safety_states_of_frames']},"
        f" closest {s['closest_distance_min_m']} m",
        f"  attention and engagement (person-frames): looking at the camera "
        f"{s['looking_at_camera_people_frames']}, engagement "
        f"{s['engagement_states_of_people_frames']}",
    ]
    if "sample_centroid_depth_error_m" in s:
        e = s["sample_centroid_depth_error_m"]
        lines.append(f"  centroid depth vs the sample's true distance: median {e['median']} m, "
                     f"p95 {e['p95']} m over {e['n']} detections")
    if s["synthetic_depth"]:
        lines.append("  NOTE: the built-in sample's scene and depth are SYNTHETIC (generated).")
    for n in s["notes"]:
        lines.append(f"  note: {n}")
    names = [str(Path(f).relative_to(out_dir)) for f in files]
    lines.append(f"  pictures in {out_dir}/: " + ", ".join(names))
    return "\n".join(lines)


def write_outputs(log: DemoLog, out_dir: Path, n_frames: int = 6, sheet: int = 16
                  ) -> Tuple[Dict[str, Any], List[Path]]:
    """Pictures + summary.json into ``out_dir``; returns (summary, files written)."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "frames").mkdir(exist_ok=True)
    for old in (out_dir / "frames").glob("frame_*.png"):
        old.unlink()
    files: List[Path] = []
    keys = sorted(log.images)
    index_of = {stamp_ns(s): i for i, s in log.published}
    annotated = []
    for k in keys:
        st = k * 1e-9
        rec = log.frames.get(k)
        annotated.append((k, annotate(log.images[k], rec, log.status_for(st),
                                      index_of.get(k, len(annotated)), log.synthetic,
                                      log.interaction_for(st))))
    if annotated:
        with_people = [a for a in annotated if log.frames.get(a[0]) and log.frames[a[0]].persons]
        pool = with_people or annotated
        for j in np.unique(np.linspace(0, len(pool) - 1, min(n_frames, len(pool))).astype(int)):
            k, img = pool[j]
            p = out_dir / "frames" / f"frame_{index_of.get(k, j):04d}.png"
            cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            files.append(p)
        pick = np.unique(np.linspace(0, len(annotated) - 1,
                                     min(sheet, len(annotated))).astype(int))
        p = out_dir / "contact_sheet.png"
        cv2.imwrite(str(p), cv2.cvtColor(contact_sheet([annotated[i][1] for i in pick]),
                                         cv2.COLOR_RGB2BGR))
        files.append(p)
    else:
        log.notes.append("no debug image was received: no annotated frames")
    for name, fn in (("top_view.png", plot_top_view), ("skeletons_3d.png", plot_skeletons_3d),
                     ("safety_timeline.png", plot_safety_timeline),
                     ("interaction_timeline.png", plot_interaction_timeline)):
        fn(log, out_dir / name)
        files.append(out_dir / name)
    summary = summarize(log)
    summary["files"] = [str(f.relative_to(out_dir)) for f in files]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    files.append(out_dir / "summary.json")
    return summary, files


# ------------------------------------------------------------------------------ ROS graph
class _ImageKeeper:
    """Keeps at most ``cap`` images spread over the whole run (drops every other one when full,
    then keeps every 2nd, 4th ... newcomer)."""

    def __init__(self, cap: int = 64) -> None:
        self.cap, self.stride, self.seen = cap, 1, 0
        self.images: Dict[int, np.ndarray] = {}

    def offer(self, key: int, make) -> None:
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        self.images[key] = make()
        if len(self.images) > self.cap:
            for k in sorted(self.images)[1::2]:
                del self.images[k]
            self.stride *= 2


def _make_recorder(context, log: DemoLog, status_topic: str, keeper: _ImageKeeper):
    """A node that turns the graph's outputs into ``log`` records."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from ..msg import FaceLandmarksArray, PersonInteractionArray, SafetyStatus, SkeletonArray
    from ..ros.conversions import image_msg_to_array, keypoint_msgs_to_arrays, stamp_to_sec

    class Recorder(Node):
        def __init__(self) -> None:
            super().__init__("demo_recorder", context=context)
            qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
            self.create_subscription(SkeletonArray, "people/skeletons", self.on_skeletons, qos)
            self.create_subscription(FaceLandmarksArray, "people/faces", self.on_faces, qos)
            self.create_subscription(SafetyStatus, status_topic, self.on_status, qos)
            self.create_subscription(PersonInteractionArray, "people/interaction",
                                     self.on_interaction, qos)
            self.create_subscription(Image, "people/debug_image", self.on_image,
                                     qos_profile_sensor_data)
            self.faces: Dict[int, int] = {}

        def on_skeletons(self, msg) -> None:
            now = time.time()
            persons = []
            for s in msg.skeletons:
                xy, conf, xyz, _valid = keypoint_msgs_to_arrays(s.keypoints)
                c = (np.array([s.centroid.x, s.centroid.y, s.centroid.z])
                     if s.centroid_valid else np.full(3, np.nan))
                persons.append(PersonRec(int(s.track_id), s.layout, xy, conf, xyz, c,
                                         bool(s.has_face)))
            st = stamp_to_sec(msg.header.stamp)
            key = stamp_ns(st)
            log.frames[key] = FrameRec(st, msg.header.frame_id, persons, bool(msg.depth_used),
                                       now, self.faces.pop(key, 0))

        def on_faces(self, msg) -> None:
            key = stamp_ns(stamp_to_sec(msg.header.stamp))
            if key in log.frames:
                log.frames[key].faces = len(msg.faces)
            else:
                self.faces[key] = len(msg.faces)

        def on_interaction(self, msg) -> None:
            st = stamp_to_sec(msg.header.stamp)
            for p in msg.people:
                log.interaction.append(InteractionRec(
                    st, int(p.track_id), bool(p.looking_at_robot),
                    math.degrees(p.looking_angle), ENGAGEMENT_ORDER[p.engagement]
                    if p.engagement < len(ENGAGEMENT_ORDER) else "UNKNOWN",
                    float(p.engagement_level)))

        def on_status(self, msg) -> None:
            log.safety.append(SafetyRec(stamp_to_sec(msg.header.stamp), time.time(),
                                        msg.state_name, float(msg.speed_scale),
                                        float(msg.closest_distance), int(msg.closest_person_id),
                                        msg.closest_keypoint_name, msg.reason))

        def on_image(self, msg) -> None:
            key = stamp_ns(stamp_to_sec(msg.header.stamp))
            keeper.offer(key, lambda: np.array(image_msg_to_array(msg))[..., :3])

    return Recorder()


def _params(values: Dict[str, Any]):
    from rclpy.parameter import Parameter
    return [Parameter(k, value=v) for k, v in values.items()]


@dataclass
class GraphSetup:
    """What to run: frames to publish (None: live topics), and the nodes' parameters."""

    frames: Optional[List[Any]]
    source: str
    synthetic: bool
    rate_hz: float
    pose_params: Dict[str, Any]
    safety_params: Dict[str, Any]
    duration_s: float = 10.0
    truth: Optional[np.ndarray] = None
    camera_height_m: Optional[float] = None
    face: bool = True


def run_graph(setup: GraphSetup, drain_s: float = 8.0, verbose: bool = True) -> DemoLog:
    """Runs camera (unless live) -> pose node -> safety monitor -> recorder; returns the log."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from ..ros.pose_node import PoseNode
    from ..ros.safety_monitor_node import SafetyMonitorNode

    log = DemoLog(setup.source, setup.synthetic, truth=setup.truth,
                  camera_height_m=setup.camera_height_m, face_enabled=setup.face)
    keeper = _ImageKeeper()
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    nodes = []
    executor = SingleThreadedExecutor(context=context)
    t_start = time.monotonic()
    try:
        say = print if verbose else (lambda *a, **k: None)
        say("demo: starting pose_node (loading models) ...", flush=True)
        pose = PoseNode(context=context, parameter_overrides=_params(setup.pose_params))
        log.provider = str(getattr(pose.perception, "provider", ""))
        safety = SafetyMonitorNode(context=context,
                                   parameter_overrides=_params(setup.safety_params))
        log.warning_m = float(safety.config.warning_distance_m)
        log.protective_m = float(safety.config.protective_distance_m)
        recorder = _make_recorder(context, log, safety.p["status_topic"], keeper)
        nodes += [pose, safety, recorder]
        for n in nodes:
            executor.add_node(n)
        camera = None
        if setup.frames is not None:
            from ..ros.sample_camera_node import SampleCameraNode
            camera = SampleCameraNode(frames=setup.frames, context=context,
                                      parameter_overrides=_params(
                                          {"rate_hz": float(setup.rate_hz), "loop": False}))
            camera.timer.cancel()                  # start once the pose node is connected
            nodes.append(camera)
            executor.add_node(camera)
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline and (
                    camera.pub_color.get_subscription_count() < 1
                    or camera.pub_depth.get_subscription_count() < 1):
                executor.spin_once(timeout_sec=0.05)
            for _ in range(10):                       # let discovery settle both ways
                executor.spin_once(timeout_sec=0.02)
            say(f"demo: publishing {len(setup.frames)} frames of {setup.source} at "
                f"{setup.rate_hz:g} Hz", flush=True)
            # prime: the first frame alone (first inferences are slow), then the stream
            camera.publish_next()
            t_prime = time.monotonic()
            while not log.frames and time.monotonic() - t_prime < 20.0:
                executor.spin_once(timeout_sec=0.05)
            camera.timer.reset()
            t_pub = time.monotonic()
            while not camera.done and time.monotonic() - t_pub < len(setup.frames) / \
                    setup.rate_hz * 3 + 30:
                executor.spin_once(timeout_sec=0.05)
            # drain: wait for the last frame's skeletons (the node keeps only the newest frame)
            last = stamp_ns(camera.published[-1][1]) if camera.published else None
            t_done = time.monotonic()
            while time.monotonic() - t_done < drain_s and (last is None or
                                                           last not in log.frames):
                executor.spin_once(timeout_sec=0.05)
            t_end = time.monotonic() + 0.3                   # a few more safety statuses
            while time.monotonic() < t_end:
                executor.spin_once(timeout_sec=0.05)
            log.published = list(camera.published)
        else:
            say(f"demo: listening on {pose.topics['color_image']} for {setup.duration_s:g} s",
                flush=True)
            t_end = time.monotonic() + setup.duration_s
            while time.monotonic() < t_end:
                executor.spin_once(timeout_sec=0.05)
            if not log.frames:
                log.notes.append(f"nothing received on {pose.topics['color_image']} "
                                 f"(+ depth {pose.topics['depth_image']}) in "
                                 f"{setup.duration_s:g} s")
    finally:
        for n in nodes:
            try:
                executor.remove_node(n)
                n.destroy_node()
            except Exception:  # shutting down: report nothing more
                pass
        executor.shutdown()
        if context.ok():
            rclpy.shutdown(context=context)
    log.images = keeper.images
    log.wall_s = time.monotonic() - t_start
    return log


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
    print(format_summary(summary, out, files), flush=True)
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if log.frames or setup.frames is None else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
