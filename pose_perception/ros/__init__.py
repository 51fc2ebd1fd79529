"""Thin ROS 2 layer: nodes, message conversion, and fallbacks for apt-only libraries."""
