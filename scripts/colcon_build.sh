#!/usr/bin/env bash
# colcon build of the packages under BASE_PATH into OUT_DIR/{build,install,log}, against the
# environment scripts/setup_env.sh made: a sourced ROS 2 apt install, or the .venv's ROS 2 wheels
# (with the wheels' CMake workarounds). Used by setup_env.sh (the repository itself) and by the
# test that builds the package from a workspace's src/.
#   usage: scripts/colcon_build.sh BASE_PATH OUT_DIR [extra colcon build args...]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${POSE_PERCEPTION_VENV:-$REPO/.venv}"
BASE="$1"; OUT="$2"; shift 2
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
CMAKE_EXTRA=()
if [[ -z "${ROS_DISTRO:-}" || ! -d "/opt/ros/${ROS_DISTRO:-none}" ]]; then
  export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
  LINKS="$(cat "$VENV/.pose_perception/cmake-fixed")"      # written by setup_env.sh
  CMAKE_EXTRA=(-DPython3_NumPy_INCLUDE_DIR="$LINKS/numpy-include")
fi
cd "$OUT"
exec colcon --log-base log build --base-paths "$BASE" --build-base build --install-base install \
  --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF "${CMAKE_EXTRA[@]}" \
  --event-handlers console_cohesion- summary+ status- "$@"
