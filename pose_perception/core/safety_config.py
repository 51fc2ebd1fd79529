"""The safety monitor's states, zones and parameters (ROS-free): :class:`SafetyState`,
:class:`Zone` (a region of the robot frame) and :class:`SafetyConfig`. The monitor itself is
:class:`pose_perception.core.safety.SafetyMonitor`; README.md (section "Safety monitor") specifies
both."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import List, Optional, Sequence

import numpy as np


class SafetyState(IntEnum):
    """Values match the STATE_* constants of msg/SafetyStatus.msg."""

    UNKNOWN = 0
    CLEAR = 1
    WARNING = 2
    PROTECTIVE_STOP = 3


# how restrictive each state is (UNKNOWN is the most restrictive)
SEVERITY = {SafetyState.CLEAR: 0, SafetyState.WARNING: 1, SafetyState.PROTECTIVE_STOP: 2,
            SafetyState.UNKNOWN: 3}
ZONE_KINDS = ("protective", "warning", "ignore")
ZONE_STATE = {"protective": SafetyState.PROTECTIVE_STOP, "warning": SafetyState.WARNING}


def worst_state(a: SafetyState, b: SafetyState) -> SafetyState:
    return a if SEVERITY[a] >= SEVERITY[b] else b


@dataclass
class Zone:
    """A region of the robot frame: a polygon in its xy-plane, extruded from z_min to z_max.

    kind 'protective': a keypoint inside means PROTECTIVE_STOP; 'warning': at least WARNING;
    'ignore': keypoints inside are not considered at all (e.g. a mirror, a poster, a fenced area
    behind a wall; use with care).
    """

    name: str
    kind: str
    polygon: np.ndarray                 # (M, 2) x, y vertices [m], M >= 3, either orientation
    z_min: float = -math.inf
    z_max: float = math.inf

    def __post_init__(self) -> None:
        self.polygon = np.asarray(self.polygon, np.float64).reshape(-1, 2)
        if self.kind not in ZONE_KINDS:
            raise ValueError(f"zone '{self.name}': kind must be one of {ZONE_KINDS}, "
                             f"got '{self.kind}'")
        if len(self.polygon) < 3 or not np.isfinite(self.polygon).all():
            raise ValueError(f"zone '{self.name}': polygon needs >= 3 finite vertices")
        if not self.z_min < self.z_max:
            raise ValueError(f"zone '{self.name}': need z_min < z_max")

    @classmethod
    def box(cls, name: str, kind: str, x_min: float, y_min: float, x_max: float, y_max: float,
            z_min: float = -math.inf, z_max: float = math.inf) -> "Zone":
        """An axis-aligned box zone."""
        if not (x_min < x_max and y_min < y_max):
            raise ValueError(f"zone '{name}': need x_min < x_max and y_min < y_max")
        poly = [(x_min, y_min), (x_max, y_min), (x_max, y_max), (x_min, y_max)]
        return cls(name, kind, np.array(poly), z_min, z_max)

    @classmethod
    def from_flat(cls, name: str, kind: str, xy: Sequence[float], z_min: float = -math.inf,
                  z_max: float = math.inf) -> "Zone":
        """A polygon from a flat list x0, y0, x1, y1, ... (handy for ROS parameters)."""
        if len(xy) % 2:
            raise ValueError(f"zone '{name}': flat polygon needs an even number of values")
        return cls(name, kind, np.asarray(xy, np.float64).reshape(-1, 2), z_min, z_max)

    def signed_distance_xy(self, points: np.ndarray) -> np.ndarray:
        """(K,) distance [m] of each point's xy to the polygon boundary, negative inside."""
        p = np.asarray(points, np.float64).reshape(-1, points.shape[-1])[:, :2]
        a = self.polygon
        b = np.roll(a, -1, axis=0)
        ab = b - a                                           # (M, 2)
        ap = p[:, None, :] - a[None, :, :]                   # (K, M, 2)
        t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-18), 0.0, 1.0)
        dist = np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)
        # even-odd rule for inside
        yi, yj = a[:, 1][None, :], b[:, 1][None, :]
        xi, xj = a[:, 0][None, :], b[:, 0][None, :]
        px, py = p[:, 0:1], p[:, 1:2]
        crosses = ((yi > py) != (yj > py)) & \
            (px < (xj - xi) * (py - yi) / np.where(yj == yi, 1e-18, yj - yi) + xi)
        inside = crosses.sum(axis=1) % 2 == 1
        return np.where(inside, -dist, dist)

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """(K,) bool: inside the zone grown by ``margin`` metres (in xy and in z)."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        z = points[:, 2]
        return (self.signed_distance_xy(points) <= margin) & \
            (z >= self.z_min - margin) & (z <= self.z_max + margin)


@dataclass
class SafetyConfig:
    """Parameters of :class:`SafetyMonitor`; defaults and units are listed in
    README.md (section "Safety monitor")."""

    warning_distance_m: float = 2.0
    protective_distance_m: float = 1.0
    hysteresis_m: float = 0.1              # leave a state at threshold + hysteresis_m
    release_hold_s: float = 0.0            # ... and only after that held this long
    stale_timeout_s: float = 0.5           # perception older than this -> UNKNOWN
    max_future_s: float = 0.1              # data stamped later than 'now' by more -> UNKNOWN
    min_confidence: float = 0.5            # keypoints with lower confidence are not used
    distance_mode: str = "xy"              # 'xy': from the frame's z axis; 'xyz': from its origin
    robot_radius_m: float = 0.0            # subtracted from every distance (robot's own extent)
    full_speed_distance_m: Optional[float] = None  # speed_scale reaches 1 here (default: warning)
    speed_scale_exponent: float = 1.0      # shape of the speed_scale ramp (1 = linear)
    unlocated_person_policy: str = "unknown"   # person without usable 3D: 'unknown' or 'warning'
    unlocated_speed_scale: float = 0.3     # speed_scale cap under policy 'warning'
    warning_zone_speed_scale: float = 0.5  # speed_scale cap while someone is in a warning zone
    # ISO/TS 15066-style protective separation distance
    #   S_p = v_h * (T_r + T_s) + v_r * T_r + S_s + C + Z_d + Z_r
    # the protective distance used is max(protective_distance_m, S_p); the warning and
    # full-speed distances move out by the same amount.
    human_speed_m_s: float = 1.6           # v_h (ISO 13855 walking speed)
    use_measured_human_speed: bool = False  # v_h = max(human_speed_m_s, |person velocity|)
    reaction_time_s: float = 0.0           # T_r: perception + monitor + robot controller
    stopping_time_s: float = 0.0           # T_s: robot stopping time
    robot_speed_m_s: float = 0.0           # v_r: robot speed towards the person
    stopping_distance_m: float = 0.0       # S_s
    intrusion_distance_m: float = 0.0      # C: reach of body parts not seen (e.g. ISO 13855)
    position_uncertainty_m: float = 0.0    # Z_d + Z_r: sensing and robot position uncertainty
    # each point counts as a sphere: its body radius + sigma_factor * its 1-sigma uncertainty
    sigma_factor: float = 2.0
    use_inferred_points: bool = True       # false: points inferred (model-filled) are not used
    # multi-camera coverage (SafetyMonitor.set_coverage): an area no fresh camera observes is
    # never CLEAR: 'unknown' (speed 0) or 'warning' (speed capped at unobserved_speed_scale)
    unobserved_area_policy: str = "unknown"
    unobserved_speed_scale: float = 0.3
    zones: List[Zone] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.protective_distance_m < self.warning_distance_m:
            raise ValueError("need 0 <= protective_distance_m < warning_distance_m, got "
                             f"{self.protective_distance_m} and {self.warning_distance_m}")
        if self.full_speed_distance_m is not None and \
                self.full_speed_distance_m <= self.protective_distance_m:
            raise ValueError("full_speed_distance_m must be > protective_distance_m")
        for name in ("hysteresis_m", "release_hold_s", "max_future_s", "robot_radius_m",
                     "human_speed_m_s", "reaction_time_s", "stopping_time_s", "robot_speed_m_s",
                     "stopping_distance_m", "intrusion_distance_m", "position_uncertainty_m",
                     "sigma_factor"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.stale_timeout_s > 0:
            raise ValueError(f"stale_timeout_s must be > 0, got {self.stale_timeout_s}")
        if self.distance_mode not in ("xy", "xyz"):
            raise ValueError(f"distance_mode must be 'xy' or 'xyz', got '{self.distance_mode}'")
        if self.unobserved_area_policy not in ("unknown", "warning"):
            raise ValueError("unobserved_area_policy must be 'unknown' or 'warning', got "
                             f"'{self.unobserved_area_policy}'")
        if self.unlocated_person_policy not in ("unknown", "warning"):
            raise ValueError("unlocated_person_policy must be 'unknown' or 'warning', got "
                             f"'{self.unlocated_person_policy}'")
        if not self.speed_scale_exponent > 0:
            raise ValueError("speed_scale_exponent must be > 0")
        for name in ("min_confidence", "unlocated_speed_scale", "warning_zone_speed_scale",
                     "unobserved_speed_scale"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"zone names must be unique, got {names}")

    def protective_separation_m(self, human_speed_m_s: Optional[float] = None) -> float:
        """S_p for a person moving at ``human_speed_m_s`` (default: the configured v_h)."""
        v_h = self.human_speed_m_s if human_speed_m_s is None else human_speed_m_s
        return (v_h * (self.reaction_time_s + self.stopping_time_s)
                + self.robot_speed_m_s * self.reaction_time_s + self.stopping_distance_m
                + self.intrusion_distance_m + self.position_uncertainty_m)
