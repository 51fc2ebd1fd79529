"""The package's colour conventions, shared by RViz markers, the debug image and the demo plots:
one stable colour per track id, and red (0) -> yellow (0.5) -> green (1) for confidences.
Components are floats in [0, 1]."""
from __future__ import annotations

import colorsys
import math
from typing import Tuple

RGB = Tuple[float, float, float]
_GOLDEN = 0.618033988749895


def track_rgb(track_id: int) -> RGB:
    """A stable, distinct colour per track id (golden-ratio hue steps)."""
    return colorsys.hsv_to_rgb((int(track_id) * _GOLDEN) % 1.0, 0.85, 0.95)


def confidence_rgb(confidence: float) -> RGB:
    """Red (0) -> yellow (0.5) -> green (1); NaN counts as 0."""
    c = float(confidence)
    c = min(1.0, max(0.0, c if math.isfinite(c) else 0.0))
    return min(1.0, 2 * (1 - c)), min(1.0, 2 * c), 0.0


def to_uint8(rgb: RGB) -> Tuple[int, int, int]:
    return tuple(int(round(255 * v)) for v in rgb)
