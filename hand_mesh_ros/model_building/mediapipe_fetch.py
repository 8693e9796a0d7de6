"""Fetch MediaPipe's released hand models from the PyPI ``mediapipe`` wheel.

The wheel is downloaded with ``pip download --no-deps`` (never installed) into a cache, and
the ``.tflite`` files and the Apache-2.0 licence are read straight out of the zip.
"""

import os
from pathlib import Path
import platform
import subprocess
import sys
from typing import Callable, Dict, Optional
import zipfile

MEDIAPIPE_VERSION = '0.10.14'
MODEL_NAMES = ('palm_detection_full', 'palm_detection_lite',
               'hand_landmark_full', 'hand_landmark_lite')
FALLBACK_WHEEL_ARGS = ['--platform', 'manylinux_2_17_x86_64', '--python-version', '3.11',
                       '--implementation', 'cp', '--abi', 'cp311']


def default_cache_dir() -> Path:
    """Return the wheel cache: ``$HAND_MESH_CACHE_DIR`` or ``~/.cache/hand_mesh_ros``."""
    override = os.environ.get('HAND_MESH_CACHE_DIR')
    if override:
        return Path(override)
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'hand_mesh_ros'


def _platform_tag() -> str:
    """Return a tag naming this interpreter and platform (wheels differ per platform)."""
    major, minor = sys.version_info[:2]
    return f'cp{major}{minor}-{sys.platform}-{platform.machine().lower()}'


def _cached_wheel(folder: Path, version: str) -> Optional[Path]:
    """Return a readable cached wheel of ``version`` in ``folder``, else None."""
    for path in sorted(folder.glob(f'mediapipe-{version}-*.whl')):
        if zipfile.is_zipfile(path):
            return path
    return None


def download_wheel(cache_dir: Optional[Path] = None, *, version: str = MEDIAPIPE_VERSION,
                   log: Callable[[str], None] = print) -> Path:
    """Return the path of the ``mediapipe==version`` wheel, downloading it once.

    Uses ``python -m pip download --no-deps --only-binary=:all:`` so pip picks the wheel for
    this interpreter and platform; nothing is installed.
    """
    folder = Path(cache_dir or default_cache_dir()) / 'wheels' / _platform_tag()
    cached = _cached_wheel(folder, version)
    if cached is not None:
        log(f'mediapipe wheel: using cached {cached}')
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', f'mediapipe=={version}', '-d', str(folder)]
    errors = []
    # The .tflite files are the same in every wheel: where pip finds none for this platform
    # (e.g. an interpreter mediapipe has no build for), take the x86-64 CPython 3.11 one.
    for extra in ([], FALLBACK_WHEEL_ARGS):
        log(f'mediapipe wheel: downloading ({" ".join(command[1:] + extra)})')
        result = subprocess.run(command + extra, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            break
        errors.append(f'exit {result.returncode}: {result.stderr.strip()[-1500:]}')
    else:
        raise RuntimeError(f'pip download of mediapipe=={version} failed:\n'
                           + '\n'.join(errors))
    wheel = _cached_wheel(folder, version)
    if wheel is None:
        raise RuntimeError(f'pip download succeeded but no mediapipe-{version} wheel is in '
                           f'{folder}')
    return wheel


def read_wheel_models(wheel: Path, names=MODEL_NAMES) -> Dict[str, Dict[str, object]]:
    """Return ``{name: {'path_in_wheel': str, 'data': bytes}}`` for each ``name``.tflite."""
    found = {}
    with zipfile.ZipFile(wheel) as archive:
        members = archive.namelist()
        for name in names:
            matches = [m for m in members if m.rsplit('/', 1)[-1] == f'{name}.tflite']
            if len(matches) != 1:
                raise RuntimeError(f'{wheel.name}: expected one {name}.tflite, '
                                   f'found {matches}')
            found[name] = {'path_in_wheel': matches[0], 'data': archive.read(matches[0])}
    return found


def read_wheel_license(wheel: Path) -> Dict[str, str]:
    """Return ``{'path_in_wheel', 'text'}`` of the wheel's licence (dist-info LICENSE)."""
    with zipfile.ZipFile(wheel) as archive:
        candidates = [m for m in archive.namelist()
                      if '.dist-info/' in m and m.rsplit('/', 1)[-1].upper().startswith(
                          ('LICENSE', 'LICENCE', 'COPYING'))]
        if not candidates:
            raise RuntimeError(f'{wheel.name} carries no licence file in its dist-info')
        member = sorted(candidates, key=len)[0]
        text = archive.read(member).decode('utf-8')
    if 'Apache License' not in text or 'Version 2.0' not in text:
        raise RuntimeError(f'{wheel.name}:{member} is not the Apache-2.0 licence text')
    return {'path_in_wheel': member, 'text': text}
