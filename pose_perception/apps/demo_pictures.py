"""The demo's pictures from its records: annotated frames, contact sheet, top view, 3D skeletons,
safety, interaction and body-language timelines (matplotlib, OpenCV; no ROS)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.colors import track_rgb
from .demo_records import (ENGAGEMENT_ORDER, DemoLog, FrameRec, InteractionRec, SafetyRec,
                           stamp_ns, summarize)

STATE_RGB = {"UNKNOWN": (150, 60, 200), "CLEAR": (40, 170, 60), "WARNING": (235, 170, 0),
             "PROTECTIVE_STOP": (220, 30, 30)}


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
    """The debug image with a banner: frame, people, safety state (and SYNTHETIC DEPTH), a
    second line per person: engagement, whether they look at the camera, and a third: posture,
    gestures and pointing."""
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
        lines = ["   ".join(f"id {r.track_id}: {r.engagement}"
                            + (" LOOKING at the camera" if r.looking else "")
                            for r in interaction),
                 "   ".join(f"id {r.track_id}: " + ", ".join((r.posture,) + r.gestures)
                            + (" -> pointing at a surface" if r.pointing_target is not None
                               else "") for r in interaction)]
        for k, line in enumerate(lines, start=1):
            cv2.rectangle(img, (0, k * bar), (w, (k + 1) * bar), (40, 40, 40), -1)
            cv2.putText(img, line, (6, int(bar * (k + 0.72))), cv2.FONT_HERSHEY_SIMPLEX, scale,
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


POSTURE_RGB = {"unknown": (150, 150, 150), "standing": (40, 170, 60), "sitting": (80, 130, 255),
               "crouching": (235, 170, 0), "lying": (220, 30, 30)}


def plot_body_language_timeline(log: DemoLog, path: Path) -> None:
    """Per person over time: posture (coloured band), each gesture going on (one row each) and
    the events (falls in red)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = log.published[0][1] if log.published else (
        log.interaction[0].stamp if log.interaction else 0.0)
    ids = sorted({r.track_id for r in log.interaction})
    rows = []          # (label, times, colours or None)
    for tid in ids:
        recs = [r for r in log.interaction if r.track_id == tid]
        t = np.array([r.stamp for r in recs]) - t0
        rows.append((f"id {tid} posture", t, [np.array(POSTURE_RGB.get(r.posture, (0, 0, 0)))
                                              / 255.0 for r in recs]))
        for g in sorted({g for r in recs for g in r.gestures}):
            rows.append((f"id {tid} {g}", t[[g in r.gestures for r in recs]], None))
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.35 * max(1, len(rows))))
    for y, (label, t, colours) in enumerate(rows):
        ax.scatter(t, np.full(len(t), y), marker="s", s=14,
                   c=colours if colours is not None else "tab:purple")
    for e in log.events:
        if e.track_id in ids:
            ax.axvline(e.stamp - t0, color="r" if e.what == "fall" else "0.6", lw=0.8,
                       ls="-" if e.what == "fall" else ":")
    for name, rgb in POSTURE_RGB.items():
        ax.scatter([], [], marker="s", color=np.array(rgb) / 255.0, label=name)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.set_ylim(-0.8, max(len(rows), 1) - 0.2)
    ax.set_xlabel("time since the first frame [s]  (dotted: gesture events, red: falls)")
    ax.legend(fontsize=7, loc="upper right", ncol=5)
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(_title(log, "Posture and gestures"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
                     ("interaction_timeline.png", plot_interaction_timeline),
                     ("body_language_timeline.png", plot_body_language_timeline)):
        fn(log, out_dir / name)
        files.append(out_dir / name)
    summary = summarize(log)
    summary["files"] = [str(f.relative_to(out_dir)) for f in files]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    files.append(out_dir / "summary.json")
    return summary, files
