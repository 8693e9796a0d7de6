#!/usr/bin/env bash
# Set up hand_mesh_ros on a machine without a ROS distribution (pip-installed ROS 2 wheels),
# then run the main job. Idempotent: a second run reuses what is there.
#
#   bash bootstrap.sh                    # Kilted + Python 3.11: venv, ROS 2 wheels, messages,
#                                        # package, models, then the demo
#   bash bootstrap.sh --no-demo          # everything but the demo (CI, tests)
#   bash bootstrap.sh --ros jazzy --python python3.12 --no-demo    # Jazzy (Fast DDS 2.14)
#
# --ros kilted|jazzy      ROS 2 distribution of the wheels (requirements/ros-<distro>.txt)
# --python PY             interpreter: a path, or a name found on PATH, then through pyenv
#                         (`pyenv which PY`, ~/.pyenv/versions/*/bin/PY); default python3.11
#                         (Kilted) / python3.12 (Jazzy). Kilted wheels: 3.11; Jazzy: 3.10-3.12.
# Environment: HAND_MESH_VENV (default: ./.venv; one venv per distribution and Python),
#              PYTHON (same as --python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${HAND_MESH_VENV:-$ROOT/.venv}"
RUN_DEMO=1
ROS_DISTRO_WHEELS=kilted
PY_REQUEST="${PYTHON:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-demo) RUN_DEMO=0 ;;
    --ros) ROS_DISTRO_WHEELS="${2:?--ros needs kilted or jazzy}"; shift ;;
    --ros=*) ROS_DISTRO_WHEELS="${1#--ros=}" ;;
    --python) PY_REQUEST="${2:?--python needs an interpreter}"; shift ;;
    --python=*) PY_REQUEST="${1#--python=}" ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$ROS_DISTRO_WHEELS" in
  kilted) default_py=python3.11; py_versions='3.11' ;;
  jazzy) default_py=python3.12; py_versions='3.10 3.11 3.12' ;;
  *) echo "bootstrap.sh: --ros must be kilted or jazzy, got '$ROS_DISTRO_WHEELS'" >&2; exit 2 ;;
esac
REQ_ROS="$ROOT/requirements/ros-$ROS_DISTRO_WHEELS.txt"

# find_python NAME: a path, a command on PATH, then pyenv's interpreters (as a user would).
find_python() {
  local name="$1" found=''
  if [[ "$name" == */* ]]; then
    [ -x "$name" ] && found="$name"
  else
    found=$(command -v "$name" 2>/dev/null || true)
    if [ -n "$found" ] && ! "$found" -c '' 2>/dev/null; then found=''; fi   # a pyenv shim
    if [ -z "$found" ] && command -v pyenv > /dev/null 2>&1; then
      found=$(pyenv which "$name" 2>/dev/null || true)
    fi
    if [ -z "$found" ]; then
      found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/"$name" 2>/dev/null \
              | sort -V | tail -1 || true)
    fi
  fi
  [ -n "$found" ] && echo "$found"
}

log() { printf '\n[bootstrap] %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
start=$(date +%s)

# 1. The virtual environment -------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python "${PY_REQUEST:-$default_py}") || {
    echo "bootstrap.sh: no interpreter '${PY_REQUEST:-$default_py}' (PATH, pyenv); install it" \
         "or pass --python /path/to/python3.X" >&2; exit 2; }
  log "creating virtual environment $VENV with $PY ($ROS_DISTRO_WHEELS)"
  "$PY" -m venv "$VENV"
fi
PYBIN="$VENV/bin/python"
STAMPS="$VENV/.hand_mesh_ros"
mkdir -p "$STAMPS"
touch "$VENV/COLCON_IGNORE"   # keep colcon from crawling the ROS packages inside the venv
py_version=$("$PYBIN" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case " $py_versions " in
  *" $py_version "*) ;;
  *) echo "bootstrap.sh: $VENV has Python $py_version; ROS 2 $ROS_DISTRO_WHEELS wheels need" \
          "$py_versions (use --python and another HAND_MESH_VENV)" >&2; exit 2 ;;
esac
if [ -n "$PY_REQUEST" ] && [[ "$PY_REQUEST" =~ ([0-9]+\.[0-9]+)$ ]] \
    && [ "${BASH_REMATCH[1]}" != "$py_version" ]; then
  echo "bootstrap.sh: $VENV already has Python $py_version, not $PY_REQUEST (set" \
       "HAND_MESH_VENV to another path for another interpreter)" >&2; exit 2
fi
venv_distro=$(cat "$STAMPS/distro" 2>/dev/null || echo "$ROS_DISTRO_WHEELS")
if [ "$venv_distro" != "$ROS_DISTRO_WHEELS" ]; then
  echo "bootstrap.sh: $VENV holds ROS 2 $venv_distro, not $ROS_DISTRO_WHEELS (set" \
       "HAND_MESH_VENV to another path, one venv per distribution)" >&2; exit 2
fi
echo "$ROS_DISTRO_WHEELS" > "$STAMPS/distro"

# 2. Pinned ROS 2 wheels, build tools, runtime and test dependencies ---------------------
req_hash=$(hash_of "$REQ_ROS" "$ROOT/requirements/runtime.txt" "$ROOT/requirements/test.txt")
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "installing ROS 2 $ROS_DISTRO_WHEELS wheels and dependencies (pip, Python $py_version)"
  "$PYBIN" -m pip install --quiet --upgrade pip 'setuptools>=70,<80' wheel
  "$PYBIN" -m pip install --quiet \
    -r "$REQ_ROS" \
    -r "$ROOT/requirements/runtime.txt" \
    -r "$ROOT/requirements/test.txt"
  echo "$req_hash" > "$STAMPS/requirements"
  rm -f "$STAMPS/cmake-exports" "$STAMPS/messages"
else
  log "dependencies up to date"
fi

# 3. Point the message wheels' CMake exports at this Python (they name the wheel builder's)
if [ ! -f "$STAMPS/cmake-exports" ]; then
  py_inc=$("$PYBIN" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  np_inc=$("$PYBIN" -c 'import numpy; print(numpy.get_include())')
  log "rewriting rosidl CMake exports to $py_inc and $np_inc"
  # (grep finds nothing once rewritten: a re-run after a requirements change must go on)
  { grep -l '/opt/python/' "$VENV"/share/*/cmake/*.cmake 2>/dev/null || true; } | while read -r f; do
    # Any builder interpreter (/opt/python/cp3XY-cp3XY), numpy 1.x (core) or 2.x (_core).
    sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_?core/include#$np_inc#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_inc#g" \
      "$f"
  done
  touch "$STAMPS/cmake-exports"
fi

export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"

# Build folders live in the venv: two venvs (e.g. Kilted and Jazzy) never share a CMake cache.
BUILD="$STAMPS/build"
mkdir -p "$BUILD"
build_ros_package() {  # build_ros_package SRC_DIR BUILD_DIR [CMAKE_ARGS...]
  local src="$1" bld="$2"; shift 2
  # A build folder configured from another checkout (a venv reused by a new clone): CMake
  # refuses to reuse it, so start it afresh.
  if [ -f "$bld/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$bld/CMakeCache.txt"; then
    rm -rf "$bld"
  fi
  cmake -S "$src" -B "$bld" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PYBIN" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release "$@" > "$bld.log" 2>&1 \
    && cmake --build "$bld" -j "$(nproc)" >> "$bld.log" 2>&1 \
    && cmake --install "$bld" >> "$bld.log" 2>&1 \
    || { echo "build of $src failed; last lines of $bld.log:" >&2; tail -40 "$bld.log" >&2; return 1; }
}

# 4. Messages of a ROS distribution the wheels lack (vendor/), only where the real package
#    is missing, dependencies first. A package built from vendor/ has a stamp and is rebuilt
#    when its definitions or the wheels change; one without a stamp that imports is real.
for pkg in tf2_msgs object_recognition_msgs moveit_msgs; do
  src="$ROOT/vendor/$pkg"
  want=$(hash_of "$src"/msg/*.msg "$src/CMakeLists.txt" "$src/package.xml" \
         "$STAMPS/requirements")
  if [ -f "$STAMPS/vendor-$pkg" ] || ! "$PYBIN" -c "import $pkg.msg" 2>/dev/null; then
    if [ "$(cat "$STAMPS/vendor-$pkg" 2>/dev/null)" != "$want" ]; then
      log "$pkg: building the minimal definitions in vendor/$pkg"
      build_ros_package "$src" "$BUILD/$pkg"
      echo "$want" > "$STAMPS/vendor-$pkg"
    else
      log "$pkg (vendor) up to date"
    fi
  else
    log "$pkg present"
  fi
done

# 5. The package: generated messages + an editable install of the source tree ------------
# The generated `hand_mesh_ros.msg` lives in $OVERLAY/hand_mesh_ros (a namespace portion,
# its __init__.py removed) and the hand-written package is the source tree itself; the
# source package's __init__ extends its __path__ so both halves import as one package.
OVERLAY="$VENV/hand_mesh_ros_msgs"
msg_hash=$(hash_of "$ROOT"/msg/*.msg "$ROOT/CMakeLists.txt" "$ROOT/package.xml")
if [ "$(cat "$STAMPS/messages" 2>/dev/null)" != "$msg_hash" ] || [ ! -d "$OVERLAY/hand_mesh_ros/msg" ]; then
  log "building hand_mesh_ros messages"
  rm -rf "$OVERLAY"
  build_ros_package "$ROOT" "$BUILD/hand_mesh_ros" -DHAND_MESH_MESSAGES_ONLY=ON -DPYTHON_INSTALL_DIR="${OVERLAY#"$VENV/"}"
  # Leave only the generated modules: no __init__.py (namespace portion) and no egg-info
  # (pip would take it for an installed hand_mesh_ros and uninstall it with the messages).
  rm -rf "$OVERLAY/hand_mesh_ros/__init__.py" "$OVERLAY"/hand_mesh_ros-*.egg-info
  site=$("$PYBIN" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$OVERLAY" > "$site/hand_mesh_ros_msgs.pth"
  echo "$msg_hash" > "$STAMPS/messages"
else
  log "messages up to date"
fi
# The stamp names the checkout too: a venv reused by another clone must point at that clone.
package_stamp="$(hash_of "$ROOT/setup.py") $ROOT"
if [ ! -x "$VENV/bin/hand-mesh" ] || [ "$(cat "$STAMPS/package" 2>/dev/null)" != "$package_stamp" ]; then
  log "installing hand_mesh_ros (editable) and its console scripts"
  "$PYBIN" -m pip install --quiet --no-deps --no-build-isolation \
    --config-settings editable_mode=compat -e "$ROOT"
  echo "$package_stamp" > "$STAMPS/package"
else
  log "package up to date"
fi

# 6. Models (idempotent: converts the released weights once) -----------------------------
log "preparing models"
"$VENV/bin/hand-mesh" setup-models

log "setup done in $(( $(date +%s) - start )) s: ROS 2 $ROS_DISTRO_WHEELS, Python $py_version, venv $VENV ($(du -sh "$VENV" | cut -f1))"

# 7. The main job on the embedded sample video ---------------------------------------------
if [ "$RUN_DEMO" = 1 ]; then
  log "running the demo: the sample video through hand_mesh_node over DDS (hand-mesh demo)"
  "$VENV/bin/hand-mesh" demo --out "$ROOT/out/demo"
fi
