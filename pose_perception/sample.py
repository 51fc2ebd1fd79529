"""The two names ``launch/pose_perception.launch.py`` imports from here; the built-in sample
itself lives in :mod:`pose_perception.sources.sample`. Delete this module once the launch file
imports them from there."""
from .sources.sample import SAMPLE_CAMERA_MOUNT, SAMPLE_FRAME_ID

__all__ = ["SAMPLE_CAMERA_MOUNT", "SAMPLE_FRAME_ID"]
