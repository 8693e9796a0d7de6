"""A scratch environment with the real ``ros2 launch``, for tests of launch/camera.launch.py.

launch, launch_ros and ros2cli are not on PyPI: they are built here from their sources (pure
Python, installed with pip into a scratch prefix), with the one message package launch_ros
imports that the pip ROS 2 lacks (``vendor/composition_interfaces``, built with CMake like
vendor/tf2_msgs). hand_mesh_ros itself is laid out as an installed ament package (share/ with
launch/ and config/, lib/ with the executables) pointing at this source tree, so
``ros2 launch hand_mesh_ros camera.launch.py`` runs this tree's launch file and nodes.

Sources: the folder named by ``HAND_MESH_LAUNCH_SOURCES`` holding checkouts (or git
repositories) ``launch``, ``launch_ros`` and ``ros2cli``, else the git mirrors of this
project's machines. Without them, :func:`launch_environment` skips the test with the reason.
The build is cached per source revision and Python environment under
``~/.cache/hand_mesh_ros/ros2_launch``.
"""

import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPOSITORIES = ('launch', 'launch_ros', 'ros2cli')
#: The Python packages installed from the sources (repository, folder inside it).
PACKAGES = (('launch', 'launch'), ('launch', 'launch_xml'), ('launch', 'launch_yaml'),
            ('launch_ros', 'launch_ros'), ('launch_ros', 'ros2launch'),
            ('ros2cli', 'ros2cli'), ('ros2cli', 'ros2pkg'))
MIRRORS = Path('/work/.mirror')
CACHE = Path.home() / '.cache' / 'hand_mesh_ros' / 'ros2_launch'


def _source_dirs():
    """Return {repository: path (checkout or git dir)}, or raise LookupError saying why."""
    root = os.environ.get('HAND_MESH_LAUNCH_SOURCES')
    found = {}
    for name in REPOSITORIES:
        mirror = MIRRORS / ('ros2+%s' % name) / 'repo'
        candidates = ([Path(root) / name] if root else []) + [mirror]
        found[name] = next((c for c in candidates if c.is_dir()), None)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise LookupError(
            'the real ros2 launch needs the sources of %s (not on PyPI): set '
            'HAND_MESH_LAUNCH_SOURCES to a folder with ros2/launch, ros2/launch_ros and '
            'ros2/ros2cli checkouts named launch, launch_ros, ros2cli' % ', '.join(missing))
    return found


def _revision(path):
    """Return the checked-out commit of a git dir or checkout ('' for a plain folder)."""
    proc = subprocess.run(['git', '--git-dir', str(path / '.git') if (path / '.git').exists()
                           else str(path), 'rev-parse', 'HEAD'], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ''


def _export(path, target):
    """Copy the sources of a checkout, or the HEAD tree of a bare git dir, to ``target``."""
    if (path / '.git').exists() or not (path / 'HEAD').is_file():
        shutil.copytree(path, target, ignore=shutil.ignore_patterns('.git'))
        return
    target.mkdir(parents=True)
    archive = subprocess.run(['git', '--git-dir', str(path), 'archive', 'HEAD'],
                             capture_output=True, check=True)
    subprocess.run(['tar', '-x', '-C', str(target)], input=archive.stdout, check=True)


def _run(argv, log, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    log.write('$ %s\n%s%s' % (' '.join(argv), proc.stdout, proc.stderr))
    if proc.returncode != 0:
        raise RuntimeError('%s failed:\n%s' % (argv[:4], (proc.stdout + proc.stderr)[-3000:]))


def _build(sources, prefix):
    """Install the launch packages into ``prefix``/site and build composition_interfaces."""
    work = prefix.with_name(prefix.name + '.partial')
    shutil.rmtree(work, ignore_errors=True)
    (work / 'src').mkdir(parents=True)
    with open(work / 'build.log', 'w') as log:
        for name, path in sources.items():
            _export(path, work / 'src' / name)
        _run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
              '--no-build-isolation', '--target', str(work / 'site'), 'osrf_pycommon']
             + [str(work / 'src' / repo / folder) for repo, folder in PACKAGES], log)
        env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
        build = work / 'build_composition_interfaces'
        _run(['cmake', '-S', str(ROOT / 'vendor' / 'composition_interfaces'), '-B', str(build),
              '-DCMAKE_INSTALL_PREFIX=%s' % work, '-DPython3_EXECUTABLE=%s' % sys.executable,
              '-DBUILD_TESTING=OFF'], log, env=env)
        _run(['cmake', '--build', str(build), '-j', '2'], log, env=env)
        _run(['cmake', '--install', str(build)], log, env=env)
    shutil.rmtree(work / 'src')
    shutil.rmtree(build)
    work.rename(prefix)


def _package_prefix(prefix):
    """Lay hand_mesh_ros out as an installed ament package of this source tree."""
    share = prefix / 'share'
    (share / 'ament_index' / 'resource_index' / 'packages').mkdir(parents=True)
    (share / 'ament_index' / 'resource_index' / 'packages' / 'hand_mesh_ros').write_text('')
    (share / 'hand_mesh_ros' / 'launch').mkdir(parents=True)
    for name in ('config', 'package.xml'):
        (share / 'hand_mesh_ros' / name).symlink_to(ROOT / name)
    for launch_file in (ROOT / 'launch').glob('*.py'):   # (ros2 launch walks no symlinked dir)
        (share / 'hand_mesh_ros' / 'launch' / launch_file.name).symlink_to(launch_file)
    (prefix / 'lib' / 'hand_mesh_ros').mkdir(parents=True)
    for name in ('hand_mesh_node', 'camera_source'):
        script = prefix / 'lib' / 'hand_mesh_ros' / name
        body = (ROOT / 'scripts' / name).read_text().split('\n', 1)[1]
        script.write_text('#!%s\n%s' % (sys.executable, body))
        script.chmod(0o755)


def launch_environment(tmp_path):
    """Return the environment in which ``ros2 launch hand_mesh_ros ...`` runs this tree.

    Skips the calling test (with the reason) where the sources are missing or the build
    fails.
    """
    try:
        sources = _source_dirs()
    except LookupError as exc:
        pytest.skip(str(exc))
    # One build per source revision and per Python environment (the message package is
    # built against that environment's ROS distribution).
    key = hashlib.sha256((sys.prefix + ''.join('%s=%s;' % (n, _revision(p))
                                               for n, p in sources.items())).encode())
    key = key.hexdigest()[:16]
    prefix = CACHE / key
    if not prefix.is_dir():
        try:
            _build(sources, prefix)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            pytest.skip('building launch/launch_ros from source failed: %s' % exc)
    package = tmp_path / 'hand_mesh_ros_prefix'
    _package_prefix(package)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(prefix / 'site'), str(ROOT), str(
            prefix / Path(sysconfig.get_path('purelib')).relative_to(sys.prefix)),
            env.get('PYTHONPATH')) if p)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(
        p for p in (str(package), str(prefix), str(prefix / 'site'), sys.prefix,
                    env.get('AMENT_PREFIX_PATH')) if p)
    env['LD_LIBRARY_PATH'] = os.pathsep.join(
        p for p in (str(prefix / 'lib'), env.get('LD_LIBRARY_PATH')) if p)
    env['PATH'] = os.pathsep.join((str(prefix / 'site' / 'bin'),
                                   os.path.dirname(sys.executable), env['PATH']))
    env['ROS2CLI_DISABLE_DAEMON'] = '1'
    return env


def ros2_launch(env, *arguments, **kwargs):
    """Start ``ros2 launch hand_mesh_ros camera.launch.py ARGUMENTS`` (a Popen, own session)."""
    return subprocess.Popen(['ros2', 'launch', 'hand_mesh_ros', 'camera.launch.py']
                            + list(arguments), env=env, start_new_session=True, **kwargs)
