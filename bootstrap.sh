#!/usr/bin/env bash
# Set up hand_mesh_ros on a machine without a ROS distribution (Debian 12, CPython 3.11),
# then run the main job. Idempotent: a second run reuses what is there.
#
#   bash bootstrap.sh            # venv + ROS 2 wheels + messages + package + models + demo
#   bash bootstrap.sh --no-demo  # everything but the demo (CI, tests)
#
# Environment: HAND_MESH_VENV (default: ./.venv), PYTHON (default: python3.11 or python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${HAND_MESH_VENV:-$ROOT/.venv}"
RUN_DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

log() { printf '\n[bootstrap] %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
start=$(date +%s)

# 1. The virtual environment -------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  log "creating virtual environment $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PYBIN="$VENV/bin/python"
STAMPS="$VENV/.hand_mesh_ros"
mkdir -p "$STAMPS"
touch "$VENV/COLCON_IGNORE"   # keep colcon from crawling the ROS packages inside the venv

# 2. Pinned ROS 2 Kilted wheels, build tools, runtime and test dependencies ---------------
req_hash=$(hash_of "$ROOT"/requirements/*.txt)
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "installing ROS 2 Kilted wheels and dependencies (pip)"
  "$PYBIN" -m pip install --quiet --upgrade pip 'setuptools>=70,<80' wheel
  "$PYBIN" -m pip install --quiet \
    -r "$ROOT/requirements/ros-kilted.txt" \
    -r "$ROOT/requirements/runtime.txt" \
    -r "$ROOT/requirements/test.txt"
  echo "$req_hash" > "$STAMPS/requirements"
  rm -f "$STAMPS/cmake-exports" "$STAMPS/messages" "$STAMPS/tf2_msgs"
else
  log "dependencies up to date"
fi

# 3. Point the message wheels' CMake exports at this Python (they name the wheel builder's)
if [ ! -f "$STAMPS/cmake-exports" ]; then
  py_inc=$("$PYBIN" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  np_inc=$("$PYBIN" -c 'import numpy; print(numpy.get_include())')
  log "rewriting rosidl CMake exports to $py_inc and $np_inc"
  grep -l '/opt/python/' "$VENV"/share/*/cmake/*.cmake 2>/dev/null | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/include/python3\.11#$py_inc#g" \
           -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#$np_inc#g" \
           "$f"
  done
  touch "$STAMPS/cmake-exports"
fi

export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"

mkdir -p "$ROOT/build" && touch "$ROOT/build/COLCON_IGNORE"
build_ros_package() {  # build_ros_package SRC_DIR BUILD_DIR [CMAKE_ARGS...]
  local src="$1" bld="$2"; shift 2
  cmake -S "$src" -B "$bld" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PYBIN" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release "$@" > "$bld.log" 2>&1 \
    && cmake --build "$bld" -j "$(nproc)" >> "$bld.log" 2>&1 \
    && cmake --install "$bld" >> "$bld.log" 2>&1 \
    || { echo "build of $src failed; last lines of $bld.log:" >&2; tail -40 "$bld.log" >&2; return 1; }
}

# 4. tf2_msgs/TFMessage, only where the real tf2_msgs is missing ---------------------------
if ! "$PYBIN" -c 'import tf2_msgs.msg' 2>/dev/null; then
  log "tf2_msgs not importable: building the minimal TFMessage (vendor/tf2_msgs)"
  build_ros_package "$ROOT/vendor/tf2_msgs" "$ROOT/build/tf2_msgs"
else
  log "tf2_msgs present"
fi

# 5. The package: generated messages + an editable install of the source tree ------------
# The generated `hand_mesh_ros.msg` lives in $OVERLAY/hand_mesh_ros (a namespace portion,
# its __init__.py removed) and the hand-written package is the source tree itself; the
# source package's __init__ extends its __path__ so both halves import as one package.
OVERLAY="$VENV/hand_mesh_ros_msgs"
msg_hash=$(hash_of "$ROOT"/msg/*.msg "$ROOT/CMakeLists.txt" "$ROOT/package.xml")
if [ "$(cat "$STAMPS/messages" 2>/dev/null)" != "$msg_hash" ] || [ ! -d "$OVERLAY/hand_mesh_ros/msg" ]; then
  log "building hand_mesh_ros messages"
  rm -rf "$OVERLAY"
  build_ros_package "$ROOT" "$ROOT/build/hand_mesh_ros"     -DHAND_MESH_MESSAGES_ONLY=ON -DPYTHON_INSTALL_DIR="${OVERLAY#"$VENV/"}"
  # Leave only the generated modules: no __init__.py (namespace portion) and no egg-info
  # (pip would take it for an installed hand_mesh_ros and uninstall it with the messages).
  rm -rf "$OVERLAY/hand_mesh_ros/__init__.py" "$OVERLAY"/hand_mesh_ros-*.egg-info
  site=$("$PYBIN" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$OVERLAY" > "$site/hand_mesh_ros_msgs.pth"
  echo "$msg_hash" > "$STAMPS/messages"
else
  log "messages up to date"
fi
if [ ! -x "$VENV/bin/hand-mesh" ] || [ "$(cat "$STAMPS/package" 2>/dev/null)" != "$(hash_of "$ROOT/setup.py")" ]; then
  log "installing hand_mesh_ros (editable) and its console scripts"
  "$PYBIN" -m pip install --quiet --no-deps --no-build-isolation \
    --config-settings editable_mode=compat -e "$ROOT"
  hash_of "$ROOT/setup.py" > "$STAMPS/package"
else
  log "package up to date"
fi

# 6. Models (idempotent: converts the released weights once) -----------------------------
log "preparing models"
"$VENV/bin/hand-mesh" setup-models

log "setup done in $(( $(date +%s) - start )) s; venv $(du -sh "$VENV" | cut -f1)"

# 7. The main job on the embedded sample video ---------------------------------------------
if [ "$RUN_DEMO" = 1 ]; then
  log "running the demo: the sample video through hand_mesh_node over DDS (hand-mesh demo)"
  "$VENV/bin/hand-mesh" demo --out "$ROOT/out/demo"
fi
