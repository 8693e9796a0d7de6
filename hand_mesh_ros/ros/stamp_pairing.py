"""Messages kept by header stamp and found again by an image's stamp (bounded, thread-safe).

A subscription callback adds (depth images); the worker finds the one nearest an image's
stamp within a tolerance, waiting a little for one still on its way
(:meth:`StampCache.find`). The oldest message is dropped first.
"""

from collections import OrderedDict
import threading

from hand_mesh_ros.ros.camera_info import stamp_to_ns


class StampCache:
    """The last ``capacity`` messages by header stamp (a stamp added again replaces its own)."""

    def __init__(self, capacity=10):
        """Create an empty cache holding at most ``capacity`` messages."""
        self._capacity = max(1, int(capacity))
        self._by_stamp = OrderedDict()   # stamp ns -> message, oldest arrival first
        self._cond = threading.Condition()

    def __len__(self):
        """Return the number of stored messages."""
        return len(self._by_stamp)

    def add(self, msg):
        """Store ``msg`` under its header stamp (wakes a :meth:`find` that waits)."""
        stamp_ns = stamp_to_ns(msg.header.stamp)
        with self._cond:
            self._by_stamp.pop(stamp_ns, None)
            self._by_stamp[stamp_ns] = msg
            while len(self._by_stamp) > self._capacity:
                self._by_stamp.popitem(last=False)
            self._cond.notify_all()

    def _newest_stamp_ns(self):
        return next(reversed(self._by_stamp))

    def _nearest(self, stamp_ns):
        best = min(self._by_stamp, key=lambda stamp: abs(stamp - stamp_ns), default=None)
        return (None, None) if best is None else (abs(best - stamp_ns), self._by_stamp[best])

    def find(self, stamp_ns, tolerance_s, wait_s=0.0):
        """Return the message nearest ``stamp_ns`` within ``tolerance_s``, or None.

        When none is within the tolerance yet and the newest message is older than the image,
        wait up to ``wait_s`` for one to arrive.
        """
        tol_ns = int(round(float(tolerance_s) * 1e9))
        with self._cond:
            gap, msg = self._nearest(stamp_ns)
            if (gap is None or gap > tol_ns) and wait_s > 0.0 and self._by_stamp:
                if self._newest_stamp_ns() < stamp_ns:
                    self._cond.wait_for(lambda: self._newest_stamp_ns() >= stamp_ns - tol_ns,
                                        timeout=wait_s)
                    gap, msg = self._nearest(stamp_ns)
        return msg if gap is not None and gap <= tol_ns else None
