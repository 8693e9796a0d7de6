"""Hand mesh perception for ROS 2 (the hand_mesh_ros package).

The generated message modules (``hand_mesh_ros.msg``) are installed by the
rosidl build into the site-packages copy of this package.  ``extend_path``
lets a source checkout (tests, editable work) find them there too, so
``from hand_mesh_ros.msg import HandPose`` works from source and installed
code alike.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = '0.1.0'
