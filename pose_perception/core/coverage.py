"""Which parts of the robot's surroundings the cameras observe (multi-camera coverage).

ROS-free. A :class:`CameraView` is one camera's viewing volume: its intrinsics and image size
(:class:`~pose_perception.core.camera.CameraModel`, from its CameraInfo), its pose in the robot
frame (``T_robot_cam``, from TF) and the depth range in which people are measured
(``min_range_m``..``max_range_m`` along the optical axis). A point is *observed* when some fresh
camera's view contains it: in front of the camera within the range and projecting inside the
image (``margin_px`` from the border, so a person half out of the image does not count).

An area (a safety :class:`~pose_perception.core.safety.Zone`, or :func:`disk_zone` for "within
the warning distance") is observed when every sample point of it is: a grid of ``step_m`` over
the polygon (its vertices included) at the heights ``heights_m`` clipped to the zone's
``z_min``..``z_max`` (default: knee, hip and chest height). :func:`unobserved` lists the areas
that are not; :class:`~pose_perception.core.safety.SafetyMonitor.set_coverage` then never
says CLEAR for them. Occlusion (a shelf between camera and area) is not modelled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Sequence

import numpy as np

from .camera import CameraModel
from .frames import transform_points
from .safety import Zone

DEFAULT_HEIGHTS_M = (0.5, 1.0, 1.4)   # knee, hip, chest of a standing adult [m above z = 0]


@dataclass
class CameraView:
    """One camera's viewing volume in the robot frame (see the module docstring)."""

    name: str
    model: CameraModel
    T_robot_cam: np.ndarray             # 4x4: camera optical frame -> robot frame
    min_range_m: float = 0.3
    max_range_m: float = 5.0
    margin_px: float = 10.0

    def __post_init__(self) -> None:
        self.T_robot_cam = np.asarray(self.T_robot_cam, np.float64).reshape(4, 4)
        if not np.isfinite(self.T_robot_cam).all():
            raise ValueError(f"camera '{self.name}': transform contains NaN/inf")
        if not 0 <= self.min_range_m < self.max_range_m:
            raise ValueError(f"camera '{self.name}': need 0 <= min_range_m < max_range_m")

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: points (N, 3) in the robot frame inside this camera's viewing volume."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        R, t = self.T_robot_cam[:3, :3], self.T_robot_cam[:3, 3]
        pc = transform_points(p, R.T, -R.T @ t)        # robot -> camera (rigid inverse)
        z = pc[:, 2]
        in_range = (z >= max(self.min_range_m, 1e-3)) & (z <= self.max_range_m)
        out = np.zeros(len(p), bool)
        if in_range.any():
            out[in_range] = self.model.in_image(self.model.project(pc[in_range]),
                                                self.margin_px)
        return out


def observed(points: np.ndarray, views: Iterable[CameraView]) -> np.ndarray:
    """(N,) bool: each point inside at least one of ``views``."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    out = np.zeros(len(p), bool)
    for v in views:
        todo = ~out
        if not todo.any():
            break
        out[todo] = v.contains(p[todo])
    return out


def disk_zone(name: str, radius_m: float, kind: str = "warning", sides: int = 24) -> Zone:
    """A polygon around the robot frame's z axis that contains the disk of ``radius_m``
    (circumscribed, so sampling it never misses part of the disk)."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be > 0, got {radius_m}")
    r = radius_m / math.cos(math.pi / sides)
    a = np.arange(sides) * 2 * math.pi / sides
    return Zone(name, kind, np.stack([r * np.cos(a), r * np.sin(a)], axis=1))


def sample_zone(zone: Zone, step_m: float = 0.2,
                heights_m: Sequence[float] = DEFAULT_HEIGHTS_M,
                min_radius_m: float = 0.0) -> np.ndarray:
    """(K, 3) sample points of ``zone``: a grid of ``step_m`` inside its polygon plus its
    vertices and edge points, at each height in ``heights_m`` clipped to z_min..z_max; points
    closer than ``min_radius_m`` to the frame's z axis (the robot's own footprint, where nobody
    can stand) are left out."""
    if not step_m > 0:
        raise ValueError(f"step_m must be > 0, got {step_m}")
    poly = zone.polygon
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    gx = np.arange(lo[0], hi[0] + step_m / 2, step_m)
    gy = np.arange(lo[1], hi[1] + step_m / 2, step_m)
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    inside = grid[zone.signed_distance_xy(np.c_[grid, np.zeros(len(grid))]) <= 0]
    edges = [poly]
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        n = max(int(np.ceil(np.linalg.norm(b - a) / step_m)), 1)
        edges.append(a + (b - a) * (np.arange(n) / n)[:, None])
    xy = np.concatenate([inside] + edges)
    xy = xy[np.hypot(xy[:, 0], xy[:, 1]) >= min_radius_m]
    zs = sorted({float(np.clip(h, zone.z_min, zone.z_max)) for h in heights_m})
    return np.concatenate([np.c_[xy, np.full(len(xy), z)] for z in zs])


def unobserved(zones: Iterable[Zone], views: Sequence[CameraView], step_m: float = 0.2,
               heights_m: Sequence[float] = DEFAULT_HEIGHTS_M,
               min_radius_m: float = 0.0) -> List[str]:
    """Names of the ``zones`` (kind 'ignore' skipped) not fully inside the union of ``views``
    (sampled by :func:`sample_zone`)."""
    out = []
    for z in zones:
        if z.kind == "ignore":
            continue
        if not observed(sample_zone(z, step_m, heights_m, min_radius_m), views).all():
            out.append(z.name)
    return out
