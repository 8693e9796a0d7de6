"""RViz markers of the hands: mesh, skeleton, joints and a label per hand.

Per hand (track) four markers with the id ``track_id`` in the namespaces ``hand_mesh``
(TRIANGLE_LIST), ``hand_skeleton`` (LINE_LIST between MediaPipe keypoints), ``hand_joints``
(SPHERE_LIST at the 21 keypoints) and ``hand_label`` (TEXT_VIEW_FACING 'right #3 0.97').
Markers of a track that is no longer seen are sent once with action DELETE. Each marker
has a short lifetime (``output.marker_lifetime_s``) so RViz clears them if the node stops.
"""

import numpy as np

from hand_mesh_ros.core.hand.topology import HAND_CONNECTIONS

#: MediaPipe hand connections (keypoint index pairs).
SKELETON_EDGES = HAND_CONNECTIONS

NAMESPACES = ('hand_mesh', 'hand_skeleton', 'hand_joints', 'hand_label')

#: Colours (r, g, b) by side, three shades each so up to three tracks of a side differ.
SIDE_COLOURS = {
    'right': ((0.20, 0.55, 0.95), (0.10, 0.80, 0.85), (0.45, 0.35, 0.95)),
    'left': ((0.95, 0.55, 0.15), (0.95, 0.30, 0.30), (0.90, 0.80, 0.15)),
}


def hand_colour(side, track_id):
    """Return the (r, g, b) colour of a hand: by side, shaded by track id."""
    shades = SIDE_COLOURS.get(side, ((0.7, 0.7, 0.7),))
    return shades[int(track_id) % len(shades)]


def marker_id(track_id):
    """Return the int32 marker id of a track."""
    return int(track_id) % (2 ** 31)


def label_text(hand):
    """Return the label of a hand, e.g. 'right #3 0.97'."""
    return '%s #%d %.2f' % (hand.side, hand.track_id, hand.score)


def points_msg(points):
    """Return a list of geometry_msgs/Point from an (N, 3) array."""
    from geometry_msgs.msg import Point
    out = []
    for x, y, z in np.asarray(points, dtype=np.float64).tolist():
        p = Point()
        p.x, p.y, p.z = x, y, z
        out.append(p)
    return out


def triangle_corners(hand):
    """Return (3F, 3) the corners of every mesh triangle (TRIANGLE_LIST order)."""
    return np.asarray(hand.vertices_m, dtype=np.float64)[np.asarray(hand.faces)].reshape(-1, 3)


class MarkerBuilder:
    """Build MarkerArrays frame by frame, deleting the markers of hands that disappeared."""

    def __init__(self, lifetime_s=0.5):
        """Create a builder; ``lifetime_s`` is each marker's lifetime in seconds."""
        self.lifetime_s = float(lifetime_s)
        self._live = set()   # (namespace, id) sent as ADD last time

    def _marker(self, header, ns, track_id, marker_type):
        from visualization_msgs.msg import Marker
        marker = Marker()
        marker.header.stamp = header.stamp
        marker.header.frame_id = header.frame_id
        marker.ns = ns
        marker.id = marker_id(track_id)
        marker.type = marker_type
        marker.action = Marker.ADD
        marker.pose.orientation.w = 1.0
        marker.frame_locked = False
        lifetime_ns = int(round(self.lifetime_s * 1e9))
        marker.lifetime.sec = lifetime_ns // 1_000_000_000
        marker.lifetime.nanosec = lifetime_ns % 1_000_000_000
        return marker

    def hand_markers(self, header, hand, splice_mesh=False):
        """Return the four ADD markers of one (finite) hand.

        With ``splice_mesh`` the mesh marker holds one sentinel point (see
        :mod:`hand_mesh_ros.ros.marker_serialization`) instead of its triangle corners.
        """
        from visualization_msgs.msg import Marker
        r, g, b = hand_colour(hand.side, hand.track_id)
        mesh = self._marker(header, 'hand_mesh', hand.track_id, Marker.TRIANGLE_LIST)
        mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0
        mesh.color.r, mesh.color.g, mesh.color.b, mesh.color.a = r, g, b, 0.85
        if splice_mesh:
            from hand_mesh_ros.ros.marker_serialization import sentinel_points
            mesh.points = sentinel_points()
        else:
            mesh.points = points_msg(triangle_corners(hand))
        joints = np.asarray(hand.joints_m)
        skeleton = self._marker(header, 'hand_skeleton', hand.track_id, Marker.LINE_LIST)
        skeleton.scale.x = 0.003
        skeleton.color.r, skeleton.color.g, skeleton.color.b, skeleton.color.a = 1.0, 1.0, 1.0, 1.0
        skeleton.points = points_msg(joints[np.asarray(SKELETON_EDGES).ravel()])
        spheres = self._marker(header, 'hand_joints', hand.track_id, Marker.SPHERE_LIST)
        spheres.scale.x = spheres.scale.y = spheres.scale.z = 0.008
        spheres.color.r, spheres.color.g, spheres.color.b, spheres.color.a = r, g, b, 1.0
        spheres.points = points_msg(joints)
        label = self._marker(header, 'hand_label', hand.track_id, Marker.TEXT_VIEW_FACING)
        label.pose.position.x = float(joints[0, 0])
        label.pose.position.y = float(joints[0, 1]) + 0.03   # below the wrist (y is down)
        label.pose.position.z = float(joints[0, 2])
        label.scale.z = 0.02
        label.color.r, label.color.g, label.color.b, label.color.a = r, g, b, 1.0
        label.text = label_text(hand)
        return [mesh, skeleton, spheres, label]

    @property
    def has_live_markers(self):
        """Return True when markers were added last time (a DELETE may be due)."""
        return bool(self._live)

    def build_serialized(self, header, hands):
        """Return the CDR bytes of :meth:`build`'s MarkerArray, built fast (for publish)."""
        from rclpy.serialization import serialize_message
        from hand_mesh_ros.ros.marker_serialization import serialize_with_points
        corners = [triangle_corners(hand) for hand in hands]
        if not all(len(c) for c in corners):
            return serialize_message(self.build(header, hands))
        return serialize_with_points(self.build(header, hands, splice_mesh=True), corners)

    def build(self, header, hands, splice_mesh=False):
        """Return a MarkerArray: ADD markers of ``hands``, DELETE for hands no longer seen."""
        from visualization_msgs.msg import Marker, MarkerArray
        markers = []
        live = set()
        for hand in hands:
            for marker in self.hand_markers(header, hand, splice_mesh):
                markers.append(marker)
                live.add((marker.ns, marker.id))
        for ns, mid in sorted(self._live - live):
            marker = Marker()
            marker.header.stamp = header.stamp
            marker.header.frame_id = header.frame_id
            marker.ns, marker.id, marker.action = ns, mid, Marker.DELETE
            markers.append(marker)
        self._live = live
        return MarkerArray(markers=markers)
