"""The demo's plain records of what the graph published (no ROS), and the summary of a run."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# PersonInteraction.engagement values, in the message's order
ENGAGEMENT_ORDER = ("UNKNOWN", "DISENGAGED", "ENGAGING", "ENGAGED", "DISENGAGING")
# PersonInteraction.posture values, in the message's order
POSTURE_ORDER = ("unknown", "standing", "sitting", "crouching", "lying")


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
    posture: str = "unknown"  # one of POSTURE_ORDER
    gestures: Tuple[str, ...] = ()   # active gestures, e.g. 'left hand raised', 'thumb up'
    pointing_target: Optional[np.ndarray] = None   # (3,) metres, when pointing at something


@dataclass
class EventRec:
    stamp: float
    track_id: int
    what: str                 # e.g. 'waving started', 'fall'


@dataclass
class DemoLog:
    """Everything the demo saw, ROS-free (the pictures and the summary are made from this)."""

    source: str
    synthetic: bool
    frames: Dict[int, FrameRec] = field(default_factory=dict)      # key: stamp in ns
    images: Dict[int, np.ndarray] = field(default_factory=dict)    # annotated RGB by stamp ns
    safety: List[SafetyRec] = field(default_factory=list)
    interaction: List[InteractionRec] = field(default_factory=list)
    events: List[EventRec] = field(default_factory=list)
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
        "postures_of_people_frames": _count(r.posture for r in log.interaction),
        "gestures_of_people_frames": _count(g for r in log.interaction for g in r.gestures),
        "events": _count(e.what for e in log.events),
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


def _count(names) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
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
