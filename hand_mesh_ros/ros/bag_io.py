"""rosbag2 recordings (MCAP or sqlite3) in and out, with the `rosbags` library.

Messages travel as CDR bytes, exactly as on the wire: the writer takes what
``rclpy.serialization.serialize_message`` (or a raw subscription) gives, the reader yields
what ``deserialize_message`` takes. The type store knows the standard ROS 2 Kilted types and
registers this package's messages from its ``.msg`` files, so recordings carry full message
definitions and open in ``ros2 bag``, Foxglove and `rosbags` alike.
"""

import importlib
from pathlib import Path
import sys

from hand_mesh_ros.paths import _PACKAGE_DIR

PACKAGE = 'hand_mesh_ros'
STORAGES = ('mcap', 'sqlite3')


def _message_dir():
    """Return the directory holding this package's .msg files (source or installed)."""
    candidates = [_PACKAGE_DIR.parent / 'msg',
                  Path(sys.prefix) / 'share' / PACKAGE / 'msg']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE)) / 'msg')
    except Exception:  # noqa: B902 - ament index absent or package not registered
        pass
    for path in candidates:
        if (path / 'HandPose.msg').is_file():
            return path
    raise FileNotFoundError('hand_mesh_ros .msg files not found in %s'
                            % ', '.join(map(str, candidates)))


def make_typestore():
    """Return a rosbags type store with ROS 2 Kilted types plus this package's messages."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(_message_dir().glob('*.msg')):
        name = '%s/msg/%s' % (PACKAGE, path.stem)
        types.update(get_types_from_msg(path.read_text(), name))
    store.register(types)
    return store


def message_class(msgtype):
    """Return the rclpy message class for a type name like 'sensor_msgs/msg/Image'."""
    package, _, name = msgtype.replace('/msg/', '/').partition('/')
    return getattr(importlib.import_module('%s.msg' % package), name)


def type_name(message_or_class):
    """Return 'pkg/msg/Name' for an rclpy message instance or class."""
    cls = message_or_class if isinstance(message_or_class, type) else type(message_or_class)
    package = cls.__module__.split('.')[0]
    return '%s/msg/%s' % (package, cls.__name__)


class ClosesOnExit:
    """Mixin: a ``with`` block returns the object and calls its ``close()`` at the end.

    ``close()`` runs also when an exception (e.g. Ctrl-C) ends the block.
    """

    def __enter__(self):
        """Return self."""
        return self

    def __exit__(self, *exc):
        """Call ``close()``."""
        self.close()


class BagWriter(ClosesOnExit):
    """Write CDR-serialised messages to a new rosbag2 directory (context manager)."""

    def __init__(self, path, storage='mcap'):
        """Create the bag at ``path`` (must not exist) with storage 'mcap' or 'sqlite3'."""
        from rosbags.rosbag2 import StoragePlugin, Writer
        if storage not in STORAGES:
            raise ValueError('storage must be one of %s, got %r' % (STORAGES, storage))
        self.path = Path(path)
        self._store = make_typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._connections = {}
        self.counts = {}

    def write(self, topic, msgtype, stamp_ns, cdr):
        """Append one message (``cdr`` bytes of type ``msgtype``) at time ``stamp_ns``."""
        key = (topic, msgtype)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._connections[key] = connection
        self._writer.write(connection, int(stamp_ns), bytes(cdr))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_message(self, topic, message, stamp_ns):
        """Serialise an rclpy ``message`` and append it."""
        from rclpy.serialization import serialize_message
        self.write(topic, type_name(message), stamp_ns, serialize_message(message))

    def close(self):
        """Finish the bag (writes its metadata); safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_bag(path, topics=None):
    """Yield (topic, msgtype, stamp_ns, cdr_bytes) from a rosbag2 directory, in time order.

    Args:
        path: the bag directory (with metadata.yaml) of either storage.
        topics: optional iterable of topic names to read (default: all).

    """
    from rosbags.rosbag2 import Reader
    with Reader(Path(path)) as reader:
        connections = [c for c in reader.connections
                       if topics is None or c.topic in set(topics)]
        for connection, stamp_ns, raw in reader.messages(connections=connections):
            yield connection.topic, connection.msgtype, stamp_ns, raw


def bag_topics(path):
    """Return {topic: (msgtype, message_count)} of a rosbag2 directory."""
    from rosbags.rosbag2 import Reader
    with Reader(Path(path)) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
