"""The Fast DDS profile variable that the running Fast DDS reads, and the robot-cell profiles.

Fast DDS 2.x (Humble 2.6, Jazzy 2.14) reads ``FASTRTPS_DEFAULT_PROFILES_FILE``; Fast DDS 3.x
(Kilted) reads ``FASTDDS_DEFAULT_PROFILES_FILE`` and prints a deprecation warning at every
start when the 2.x name is set. The version is told by the installed package: 3.x installs
``share/fastdds``, 2.x ``share/fastrtps`` (a ROS distribution's prefix or the pip wheels').

``config/fastdds_shm.xml`` (the robot-cell profile) keeps large images on a 16 MB shared
memory segment between processes of one computer and keeps UDPv4 beside it, so every output
still reaches a participant with default transports on another computer (RViz on a laptop, a
robot controller). ``config/fastdds_remote_udp.xml`` is such a remote participant's
transports (UDPv4 only): the stand-in for another computer in tests and in the middleware
probe.
"""

import os
from pathlib import Path
import sys

#: Fast DDS major version -> the profile variable it reads.
PROFILE_VARIABLE_BY_MAJOR = {2: 'FASTRTPS_DEFAULT_PROFILES_FILE',
                             3: 'FASTDDS_DEFAULT_PROFILES_FILE'}
#: Both names, 2.x first.
PROFILE_VARIABLES = tuple(PROFILE_VARIABLE_BY_MAJOR[m] for m in sorted(PROFILE_VARIABLE_BY_MAJOR))
#: The package directory each major version installs under <prefix>/share.
_SHARE_NAME_BY_MAJOR = {3: 'fastdds', 2: 'fastrtps'}


def _prefixes(environ):
    paths = [p for p in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    return paths + [sys.prefix]


def fast_dds_major(environ=None):
    """Return the installed Fast DDS major version (2 or 3), or None when none is found."""
    for prefix in _prefixes(os.environ if environ is None else environ):
        for major, name in _SHARE_NAME_BY_MAJOR.items():
            if (Path(prefix) / 'share' / name).is_dir():
                return major
    return None


def profile_variables(profile_path, environ=None):
    """Return ``{variable: path}`` naming ``profile_path`` for the installed Fast DDS.

    One variable where the version is known (no deprecation warning on 3.x); both names when
    no Fast DDS is found (a version this cannot tell reads one of them).
    """
    major = fast_dds_major(environ)
    names = (PROFILE_VARIABLE_BY_MAJOR[major],) if major else PROFILE_VARIABLES
    return {name: str(profile_path) for name in names}


def with_profile(env, profile_path):
    """Return a copy of ``env`` that names ``profile_path`` (and not the other variable)."""
    out = dict(env)
    for name in PROFILE_VARIABLES:
        out.pop(name, None)
    out.update(profile_variables(profile_path, out))
    return out
