"""Start camera_source and hand_mesh_node as separate processes (demo, bench, tests).

This is what ``camera.launch.py`` does on a ROS distribution, for the pip environment where
``launch`` is not available: the same executables, parameters and remappings, each in its
own process, talking over real DDS.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from hand_mesh_ros.paths import _PACKAGE_DIR, data_dir
from hand_mesh_ros.ros import dds_profile

IMAGE_TOPIC = '/camera/image_raw'
CAMERA_INFO_TOPIC = '/camera/camera_info'


def config_file(name):
    """Return the path of a file in the package's config directory (source or installed)."""
    candidates = [_PACKAGE_DIR.parent / 'config' / name,
                  Path(sys.prefix) / 'share' / 'hand_mesh_ros' / 'config' / name]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError('config file %s not found in %s' % (name, candidates))


def dds_profile_variables(profile=None):
    """Return {variable: path} naming the Fast DDS profile for the installed Fast DDS.

    ``profile`` defaults to the package's robot-cell profile ``config/fastdds_shm.xml``
    (shared memory for large images beside UDPv4); the variable is the one the installed
    Fast DDS reads (:func:`hand_mesh_ros.ros.dds_profile.profile_variables`).
    """
    path = profile if profile is not None else config_file('fastdds_shm.xml')
    return dds_profile.profile_variables(path)


def dds_environment(base=None, shared_memory=True, profile=None):
    """Return an environment for ROS child processes (the robot-cell profile by default).

    With ``shared_memory`` the profile variable of the installed Fast DDS names ``profile``
    (default ``config/fastdds_shm.xml``; the other name is removed); without it, the
    environment's own settings are kept (so children and this process use the same
    transports).
    """
    env = dict(os.environ if base is None else base)
    if shared_memory:
        env = dds_profile.with_profile(
            env, profile if profile is not None else config_file('fastdds_shm.xml'))
    env.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '1')
    return env


def apply_dds_profile(env, target=None):
    """Copy the Fast DDS profile variables of ``env`` into ``target`` (default os.environ).

    A process that talks to children started with ``env`` must use the same transports; Fast
    DDS reads the variables when this process creates its first participant (rclpy.init).
    """
    target = os.environ if target is None else target
    for name in dds_profile.PROFILE_VARIABLES:
        if name in env:
            target[name] = env[name]
        else:
            target.pop(name, None)


def _ros_args(params=None, remaps=None, params_file=None):
    args = ['--ros-args']
    if params_file:
        args += ['--params-file', str(params_file)]
    for name, value in (params or {}).items():
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        args += ['-p', '%s:=%s' % (name, value)]
    for src, dst in (remaps or {}).items():
        args += ['-r', '%s:=%s' % (src, dst)]
    return args


def node_command(params=None, params_file=None):
    """Return the argv of hand_mesh_node reading IMAGE_TOPIC and CAMERA_INFO_TOPIC."""
    params_file = params_file or config_file('hand_mesh.yaml')
    return ([sys.executable, '-m', 'hand_mesh_ros.ros.node']
            + _ros_args(params, {'image': IMAGE_TOPIC, 'camera_info': CAMERA_INFO_TOPIC},
                        params_file))


def source_command(source=None, camera_info_url=None, params=None):
    """Return the argv of camera_source publishing the sample video (by default)."""
    values = {'source': str(source or data_dir() / 'asl_hand.25fps.mp4')}
    if camera_info_url is None:
        camera_info_url = config_file('camera_sample.yaml')
    if camera_info_url:
        values['camera_info_url'] = str(camera_info_url)
    values.update(params or {})
    return ([sys.executable, '-m', 'hand_mesh_ros.ros.camera_source']
            + _ros_args(values, {'image': IMAGE_TOPIC, 'camera_info': CAMERA_INFO_TOPIC}))


class ManagedProcess:
    """A child process whose output goes to a log file; stopped with SIGINT, then SIGKILL."""

    def __init__(self, name, argv, log_path, env=None):
        """Start ``argv`` now, writing stdout and stderr to ``log_path``."""
        self.name = name
        self.log_path = Path(log_path)
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    @property
    def pid(self):
        """Return the process id."""
        return self.proc.pid

    def running(self):
        """Return True while the process runs."""
        return self.proc.poll() is None

    def stop(self, timeout_s=10.0):
        """Stop the process (SIGINT, then SIGKILL after ``timeout_s``); return its code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5.0)
        self._log.close()
        return self.proc.returncode

    def wait(self, timeout_s):
        """Wait up to ``timeout_s`` for the process to exit; return its code or None."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines=20):
        """Return the last ``lines`` lines of the process log."""
        self._log.flush()
        text = self.log_path.read_text(errors='replace') if self.log_path.exists() else ''
        return '\n'.join(text.splitlines()[-lines:])


def wait_for(predicate, timeout_s, spin=None, period_s=0.05):
    """Call ``spin`` (e.g. a node's spin_once) until ``predicate()`` or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        if spin is not None:
            spin()
        else:
            time.sleep(period_s)
    return bool(predicate())
