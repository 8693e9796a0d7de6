"""Counters, rates and latency of the node, throttled logging, and the /diagnostics message."""

from collections import Counter, deque
import threading
import time

import numpy as np

#: Seconds over which input and output rates are measured.
RATE_WINDOW_S = 5.0

#: The node's own steps for one image, in order (milliseconds each, see NodeStats.steps):
#: receive = image stamp -> image callback (publisher's work after stamping, DDS, taking the
#: message); queue = callback -> worker start; convert = image conversion + camera model;
#: pipeline = the core pipeline; build = output messages; publish = handing them to rclpy.
STEP_NAMES = ('receive', 'queue', 'convert', 'pipeline', 'build', 'publish')

#: Largest image stamp -> callback time (ms) counted as the 'receive' step.
MAX_RECEIVE_MS = 60_000.0


class StepTimer:
    """The milliseconds of one image's steps, each from the end of the one before.

    The first step starts at the image's arrival (``received_ns``, on ``clock_ns``).
    """

    def __init__(self, received_ns, clock_ns=time.monotonic_ns):
        """Start timing at ``received_ns`` (monotonic nanoseconds)."""
        self._clock_ns = clock_ns
        self._received_ns = int(received_ns)
        self._last_ns = self._received_ns
        self.steps_ms = {}

    def end(self, step):
        """End ``step`` (a STEP_NAMES item) now."""
        now_ns = self._clock_ns()
        self.steps_ms[step] = (now_ns - self._last_ns) / 1e6
        self._last_ns = now_ns

    def total_ms(self):
        """Return the milliseconds from the arrival to the end of the last step."""
        return (self._last_ns - self._received_ns) / 1e6


def receive_ms(stamp_ns, received_wall_ns):
    """Return the image stamp -> arrival time in ms, or None when the stamp is no wall time.

    A bag's or a simulator's stamps give a negative or huge difference (over MAX_RECEIVE_MS).
    """
    elapsed_ms = (int(received_wall_ns) - int(stamp_ns)) / 1e6
    return elapsed_ms if 0.0 <= elapsed_ms <= MAX_RECEIVE_MS else None


class ThrottledLog:
    """Throttle log lines per kind: the first at once, then at most one per ``period_s``.

    Later lines of a kind say how many occurrences were not logged in between. The caller
    logs the returned text itself (rclpy ties a logging call site to one severity).
    """

    def __init__(self, period_s=5.0, clock=time.monotonic):
        """Create a log throttle with ``period_s`` seconds between lines of one kind."""
        self.period_s = float(period_s)
        self._clock = clock
        self._last = {}       # kind -> time of the last logged line
        self._skipped = Counter()
        self._lock = threading.Lock()

    def __call__(self, kind, message):
        """Return the line to log for ``kind``, or '' when it was logged < ``period_s`` ago."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period_s:
                self._skipped[kind] += 1
                return ''
            skipped = self._skipped.pop(kind, 0)
            self._last[kind] = now
        suffix = ' (%d more since the last report)' % skipped if skipped else ''
        return '[%s] %s%s' % (kind, message, suffix)


class NodeStats:
    """Thread-safe counters of the node (images in, processed, dropped, bad input, ...)."""

    def __init__(self, clock_ns=time.monotonic_ns, latency_window=300):
        """Create zeroed counters; ``clock_ns`` gives monotonic nanoseconds."""
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self.counts = Counter()          # received, processed, dropped, published, ...
        self.bad_input = Counter()       # kind -> count (images, camera_info)
        self.rejected_hands = Counter()  # reason -> count (pipeline checks + non_finite)
        self.shape_sources = Counter()   # published hands by where their 3D came from
        self.errors = Counter()          # pipeline / unexpected errors by kind
        self.camera_status = Counter()   # CameraResolution.status -> count
        self.last_camera = ('', '', '')  # (mode, status, problem)
        self._in_times = deque()
        self._out_times = deque()
        self._latency_ms = deque(maxlen=latency_window)
        self._age_ms = deque(maxlen=latency_window)
        self._steps_ms = {name: deque(maxlen=latency_window) for name in STEP_NAMES}

    def _trim(self, times, now_ns):
        while times and now_ns - times[0] > RATE_WINDOW_S * 1e9:
            times.popleft()

    def image_received(self, dropped):
        """Count one received image (and one dropped image when ``dropped``)."""
        now = self._clock_ns()
        with self._lock:
            self.counts['received'] += 1
            self.counts['dropped'] += int(bool(dropped))
            self._in_times.append(now)
            self._trim(self._in_times, now)

    def count(self, counter, kind, n=1):
        """Add ``n`` to ``counter[kind]`` (counter: one of this object's Counters)."""
        with self._lock:
            counter[kind] += n

    def camera(self, resolution):
        """Record the camera model chosen for one image."""
        with self._lock:
            self.camera_status[resolution.status] += 1
            self.last_camera = (resolution.mode, resolution.status, resolution.problem)

    def published(self, latency_ms, age_ms):
        """Record one processed image: receive -> publish latency and stamp -> publish age."""
        now = self._clock_ns()
        with self._lock:
            self.counts['processed'] += 1
            self._out_times.append(now)
            self._trim(self._out_times, now)
            self._latency_ms.append(float(latency_ms))
            self._age_ms.append(float(age_ms))

    def steps(self, steps_ms):
        """Record the milliseconds of the node's steps for one image ({STEP_NAMES item: ms})."""
        with self._lock:
            for name, value in steps_ms.items():
                self._steps_ms[name].append(float(value))

    def snapshot(self):
        """Return a dict of every figure (rates in Hz, latencies in ms)."""
        now = self._clock_ns()
        with self._lock:
            self._trim(self._in_times, now)
            self._trim(self._out_times, now)
            latency = np.array(self._latency_ms) if self._latency_ms else None
            age = np.array(self._age_ms) if self._age_ms else None
            return {
                'counts': dict(self.counts), 'bad_input': dict(self.bad_input),
                'rejected_hands': dict(self.rejected_hands), 'errors': dict(self.errors),
                'shape_sources': dict(self.shape_sources),
                'camera_status': dict(self.camera_status), 'last_camera': self.last_camera,
                'input_rate_hz': len(self._in_times) / RATE_WINDOW_S,
                'output_rate_hz': len(self._out_times) / RATE_WINDOW_S,
                'latency_p50_ms': float(np.median(latency)) if latency is not None else None,
                'latency_p95_ms': (float(np.percentile(latency, 95))
                                   if latency is not None else None),
                'age_p50_ms': float(np.median(age)) if age is not None else None,
                'steps_p50_ms': {name: float(np.median(values))
                                 for name, values in self._steps_ms.items() if values},
            }


def diagnostic_array(snapshot, header, backend, name='hand_mesh_node: pipeline',
                     previous=None, frame_clashes=()):
    """Return a diagnostic_msgs/DiagnosticArray with one status built from ``snapshot``.

    The level is WARN when the camera is not fully known or when bad input or errors were
    counted since ``previous`` (the snapshot of the last report), else OK; ERROR while
    ``frame_clashes`` (sentences: TF frames that clash with another node's) is not empty.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    mode, status, problem = snapshot['last_camera']
    values = [('backend', backend), ('camera_mode', mode or 'unknown (no image yet)'),
              ('camera_status', status), ('camera_problem', problem)]
    for key in ('input_rate_hz', 'output_rate_hz', 'latency_p50_ms', 'latency_p95_ms',
                'age_p50_ms'):
        value = snapshot[key]
        values.append((key, 'n/a' if value is None else '%.2f' % value))
    for step, value in snapshot.get('steps_p50_ms', {}).items():
        values.append(('step_%s_p50_ms' % step, '%.2f' % value))
    counts = snapshot['counts']
    for key in ('received', 'processed', 'dropped'):
        values.append(('frames_' + key, str(counts.get(key, 0))))
    for key in sorted(k for k in counts if k.startswith('depth_')):
        values.append(('frames_' + key, str(counts[key])))
    for group in ('bad_input', 'rejected_hands', 'shape_sources', 'errors', 'camera_status'):
        for kind, count in sorted(snapshot[group].items()):
            values.append(('%s.%s' % (group, kind), str(count)))
    previous = previous or {}
    new_problems = [g for g in ('bad_input', 'errors')
                    if sum(snapshot[g].values()) > sum(previous.get(g, {}).values())]
    level = DiagnosticStatus.OK
    message = 'ok'
    if mode and mode != 'full_intrinsics':
        level, message = DiagnosticStatus.WARN, 'camera mode %s: %s' % (mode, problem)
    if new_problems:
        level = DiagnosticStatus.WARN
        message = 'new %s; %s' % (' and '.join(new_problems), message)
    for index, clash in enumerate(frame_clashes):
        values.append(('tf_frame_clash.%d' % index, clash))
    if frame_clashes:
        level = DiagnosticStatus.ERROR
        message = 'TF frame clash: %s; %s' % (frame_clashes[0], message)
    status_msg = DiagnosticStatus(level=level, name=name, message=message,
                                  hardware_id=header.frame_id,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values])
    return DiagnosticArray(header=header, status=[status_msg])
