"""Hand mesh perception for ROS 2 (the hand_mesh_ros package).

The generated message modules (``hand_mesh_ros.msg``) are installed by the
rosidl build into the site-packages copy of this package.  ``extend_path``
lets a source checkout (tests, editable work) find them there too, so
``from hand_mesh_ros.msg import HandPose`` works from source and installed
code alike.

``__version__`` is read on first use from the one place the version is written, the
package's ``package.xml``: the file itself in a source tree, else the installed
distribution's metadata (setup.py copies it from package.xml), else the copy in a colcon
install's share directory.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)


def _read_version():
    """Return the version of package.xml ('unknown' when no copy of it can be found)."""
    from importlib import metadata
    from pathlib import Path
    from xml.etree import ElementTree

    def from_file(path):
        return ElementTree.parse(path).findtext('version', 'unknown').strip()

    source_tree = Path(__file__).resolve().parents[1] / 'package.xml'
    if source_tree.is_file():
        return from_file(source_tree)
    try:
        return metadata.version('hand_mesh_ros')
    except metadata.PackageNotFoundError:
        pass
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory('hand_mesh_ros')) / 'package.xml'
    except Exception:  # noqa: B902 - no ament index (pip install without ROS)
        return 'unknown'
    return from_file(share) if share.is_file() else 'unknown'


def __getattr__(name):
    """Provide ``__version__`` lazily: importing the package reads no file."""
    if name == '__version__':
        globals()['__version__'] = version = _read_version()
        return version
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
