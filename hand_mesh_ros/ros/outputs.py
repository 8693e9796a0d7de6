"""One image's hands -> every output message, for hand_mesh_node and ``hand-mesh process``.

:class:`OutputBuilder` holds what a stream of images shares: the TF frame names that stay the
same for a track's life (:class:`~hand_mesh_ros.ros.tf_frames.HandFrameNames`) and the markers
still shown (to delete those of hands that disappeared). One builder serves one stream, so
the node and the offline tool publish the same messages for the same FrameResults.

Outputs by name (``OUTPUT_TOPICS``): ``poses`` (HandPoseArray) and ``mesh`` (HandMeshArray),
one per image, empty when no hand is seen; ``tf`` (TFMessage) for an image with hands;
``markers`` (MarkerArray, as CDR bytes where the fast serialiser passed its self-test) for an
image with hands and once more to delete the markers of hands no longer seen;
``debug_image`` (Image) the input with the hands drawn.
"""

from hand_mesh_ros.ros import debug_image, frame_names, image_conversion, marker_serialization
from hand_mesh_ros.ros import messages, tf_frames
from hand_mesh_ros.ros.markers import MarkerBuilder

#: Output topic names: relative ones resolve in the node's namespace (``/hand/poses`` with
#: none); tf and diagnostics are absolute by convention (tf2 listens on /tf only).
OUTPUT_TOPICS = {'poses': 'hand/poses', 'mesh': 'hand/mesh', 'markers': 'hand/markers',
                 'debug_image': 'hand/debug_image', 'tf': '/tf', 'diagnostics': '/diagnostics'}

#: Output name -> message type ('pkg/msg/Name') of what :meth:`OutputBuilder.build` returns.
OUTPUT_TYPES = {'poses': 'hand_mesh_ros/msg/HandPoseArray',
                'mesh': 'hand_mesh_ros/msg/HandMeshArray',
                'tf': 'tf2_msgs/msg/TFMessage',
                'markers': 'visualization_msgs/msg/MarkerArray',
                'debug_image': 'sensor_msgs/msg/Image'}

#: The outputs of one image, in the order they are built.
IMAGE_OUTPUTS = ('mesh', 'poses', 'tf', 'markers', 'debug_image')
#: Output name -> the parameter that switches it off (outputs not named are always on).
OUTPUT_SWITCHES = {'tf': 'output.publish_tf', 'markers': 'output.publish_markers',
                   'debug_image': 'output.debug_image'}
#: Readers of an output inside hand_mesh_node (its TF frame clash monitor), not subscribers.
OWN_READERS = {'tf': 1}


def wanted_outputs(publishers, values):
    """Return the names of the outputs switched on in ``values`` and subscribed to.

    ``publishers``: output name -> the node's publisher of it.
    """
    wanted = set()
    for name, publisher in publishers.items():
        switch = OUTPUT_SWITCHES.get(name)
        readers = publisher.get_subscription_count() - OWN_READERS.get(name, 0)
        if (switch is None or values[switch]) and readers > 0:
            wanted.add(name)
    return wanted


class OutputBuilder:
    """Build the output messages of a stream of images (one builder per stream)."""

    def __init__(self, tf_prefix='', marker_lifetime_s=0.5, namespace='/'):
        """Start a stream: no TF names held, no markers shown.

        ``tf_prefix``: ``output.tf_prefix``, the first part of every hand frame name ('' =
        derived from the ROS ``namespace`` the stream is published in, see
        :func:`~hand_mesh_ros.ros.frame_names.tf_prefix`); ``marker_lifetime_s``: each
        marker's lifetime (``output.marker_lifetime_s``).
        """
        self.namespace = namespace
        self.tf_prefix = frame_names.tf_prefix(tf_prefix, namespace)
        self.tf_names = tf_frames.HandFrameNames()
        self.markers = MarkerBuilder(lifetime_s=marker_lifetime_s)
        self._fast_markers = marker_serialization.self_test()

    def set_tf_prefix(self, parameter_value):
        """Change the hand frame prefix to ``output.tf_prefix`` ``parameter_value``."""
        self.tf_prefix = frame_names.tf_prefix(parameter_value, self.namespace)

    def build(self, header, hands, wanted, rgb=None, camera=None):
        """Return ``[(output name, message)]`` for one image, in ``IMAGE_OUTPUTS`` order.

        Args:
            header: std_msgs/Header with the image stamp and the camera frame id.
            hands: the image's finite HandEstimates.
            wanted: the output names to build (an output not wanted is not built, and a
                stream state it would update is left as it is).
            rgb: (H, W, 3) uint8 input image, for ``debug_image``.
            camera: the CameraModel used (None in weak-perspective mode), for ``debug_image``.

        ``tf`` is left out for an image without hands and ``markers`` when there is nothing
        to add or delete; a marker message is CDR bytes when the fast serialiser is used.
        """
        build = {'mesh': lambda: messages.mesh_array_msg(header, hands),
                 'poses': lambda: messages.pose_array_msg(header, hands),
                 'tf': lambda: self.tf_message(header, hands),
                 'markers': lambda: self.marker_message(header, hands),
                 'debug_image': lambda: self.debug_image_message(header, hands, rgb, camera)}
        built = [(name, build[name]()) for name in IMAGE_OUTPUTS if name in wanted]
        return [(name, message) for name, message in built if message is not None]

    def tf_message(self, header, hands):
        """Return the TFMessage of ``hands`` with the stream's stable names (None: no hand)."""
        if not hands:
            return None
        return tf_frames.tf_message(hands, header, self.tf_prefix, names=self.tf_names)

    def marker_message(self, header, hands):
        """Return the markers (MarkerArray or its CDR bytes), or None when nothing changes."""
        if not hands and not self.markers.has_live_markers:
            return None
        if self._fast_markers:
            return self.markers.build_serialized(header, hands)
        return self.markers.build(header, hands)

    def debug_image_message(self, header, hands, rgb, camera):
        """Return the sensor_msgs/Image of ``rgb`` with ``hands`` drawn."""
        drawn = debug_image.draw_hands(rgb, hands, camera)
        return image_conversion.rgb_to_image(drawn, stamp=header.stamp,
                                             frame_id=header.frame_id)
