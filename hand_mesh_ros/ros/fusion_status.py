"""hand_fusion_node's per-camera state and its /diagnostics.

:class:`CameraInput` owns what the node knows of one camera: its topic, its newest hands,
the hands it refused and why, and why it was left out of the last fused output.
:func:`fusion_diagnostics` reports one status per camera (OK while it is fused, WARN with
the reason while it is left out: never heard from, stale, out of sync, no transform, a frame
id another camera claims) and one for the fusion itself (outputs, fused hands, refused hands
by reason, transforms the stand-in tf buffer refused).
"""

from collections import Counter, namedtuple

#: One camera message's usable content: stamp, camera frame, HandObservations, a sequence
#: number (new messages have higher numbers).
CameraHands = namedtuple('CameraHands', 'stamp_ns frame_id observations seq')


def camera_topic(entry):
    """Return the HandPoseArray topic of an ``input.cameras`` entry (namespace or topic)."""
    entry = entry.rstrip('/')
    return entry if entry.endswith('poses') else entry + '/hand/poses'


class CameraInput:
    """One camera's state in the fusion node (see the module docstring)."""

    def __init__(self, key):
        """Start with nothing received from camera ``key``."""
        self.key = key
        self.topic = camera_topic(key)
        self.latest = None        # CameraHands
        self.received = 0
        self.refused = Counter()  # reason -> hands (or messages) refused
        self.left_out = ''        # why the last output did without this camera ('' = used)
        self.tf_problem = ''      # why its last transform lookup failed ('' = it worked)
        self.fused_seq = -1       # seq of the newest message used in an output
        self._new_since_ns = None  # arrival (monotonic ns) of the oldest unfused message

    def offer(self, stamp_ns, frame_id, observations, received_ns):
        """Keep a new message's hands; return '' or why the message is refused.

        ``received_ns``: the message's arrival (monotonic clock).
        """
        if self.latest is not None and stamp_ns < self.latest.stamp_ns:
            self.refused['stamp_backwards'] += 1
            return 'stamp_backwards'
        if not self.has_new:
            self._new_since_ns = int(received_ns)
        self.received += 1
        self.latest = CameraHands(stamp_ns, frame_id, observations, self.received)
        return ''

    @property
    def has_new(self):
        """Return True when a message arrived since the last output that used this camera."""
        return self.latest is not None and self.latest.seq > self.fused_seq

    @property
    def new_since_ns(self):
        """Return the arrival of the oldest message not fused yet, or None when none is new."""
        return self._new_since_ns if self.has_new else None


def duplicate_frames(cameras, keys):
    """Return {camera key: the camera that claims its frame id first (``keys`` order)}."""
    owners = {}
    duplicates = {}
    for key in keys:
        frame_id = cameras[key].latest.frame_id
        if frame_id in owners:
            duplicates[key] = owners[frame_id]
        else:
            owners[frame_id] = key
    return duplicates


def _camera_status(camera, name, header):
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
    values = [('topic', camera.topic), ('messages_received', str(camera.received))]
    if camera.latest is not None:
        values += [('frame_id', camera.latest.frame_id),
                   ('stamp_ns', str(camera.latest.stamp_ns)),
                   ('hands', str(len(camera.latest.observations)))]
    values += [('refused.%s' % k, str(v)) for k, v in sorted(camera.refused.items())]
    level, message = DiagnosticStatus.OK, 'fused'
    if camera.left_out:
        level, message = DiagnosticStatus.WARN, 'left out: ' + camera.left_out
    return DiagnosticStatus(level=level, name='%s: camera %s' % (name, camera.key),
                            message=message, hardware_id=header.frame_id,
                            values=[KeyValue(key=k, value=v) for k, v in values])


def fusion_diagnostics(cameras, counts, header, name, previous_refused=0):
    """Return a DiagnosticArray: one status per camera and one for the fusion.

    ``counts``: the node's Counter (outputs, fused_hands, non_finite, tf_refused.*, ...);
    the fusion status is WARN when hands were refused since ``previous_refused`` (the total
    at the last report) or when no camera is fused.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    statuses = [_camera_status(camera, name, header) for camera in cameras.values()]
    refused = sum(sum(c.refused.values()) for c in cameras.values())
    used = [c.key for c in cameras.values() if c.latest is not None and not c.left_out]
    level, message = DiagnosticStatus.OK, 'fusing %d camera(s)' % len(used)
    if not used:
        level, message = DiagnosticStatus.WARN, 'no camera can be fused'
    elif refused > previous_refused:
        level = DiagnosticStatus.WARN
        message += '; %d hand(s) refused since the last report' % (refused - previous_refused)
    values = [(k, str(v)) for k, v in sorted(counts.items())]
    values.append(('hands_refused', str(refused)))
    statuses.append(DiagnosticStatus(level=level, name='%s: fusion' % name, message=message,
                                     hardware_id=header.frame_id,
                                     values=[KeyValue(key=k, value=v) for k, v in values]))
    return DiagnosticArray(header=header, status=statuses), refused
