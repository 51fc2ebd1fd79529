"""Standalone helper scripts run with *other* interpreters (converter venv, MediaPipe oracle venv).

Modules here must not import anything from ``pose_perception``: they are executed by path with a
different Python environment (see ``pose_perception.provision``).
"""
