"""Pair messages by header stamp: the last few messages of a topic, keyed by their stamp.

One class serves every pairing by stamp (camera_info with images, depth images with colour
images): :meth:`StampCache.lookup` pairs an exact stamp (else the latest message),
:meth:`StampCache.find` the nearest stamp within a tolerance, waiting for a late message when
asked.
"""

from collections import OrderedDict
import threading

#: Nanoseconds per second.
NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp):
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


class StampCache:
    """The last ``capacity`` messages by header stamp (bounded; oldest dropped first).

    A message whose stamp is already held replaces the held one. Thread-safe: a subscription
    callback adds while a worker looks up (and may wait in :meth:`find`).
    """

    def __init__(self, capacity=10):
        """Create an empty cache holding at most ``capacity`` (at least one) messages."""
        self._capacity = max(1, int(capacity))
        self._by_stamp = OrderedDict()
        self._cond = threading.Condition()

    def __len__(self):
        """Return the number of cached messages."""
        return len(self._by_stamp)

    def add(self, msg):
        """Store ``msg`` under its header stamp."""
        stamp_ns = stamp_to_ns(msg.header.stamp)
        with self._cond:
            self._by_stamp.pop(stamp_ns, None)
            self._by_stamp[stamp_ns] = msg
            while len(self._by_stamp) > self._capacity:
                self._by_stamp.popitem(last=False)
            self._cond.notify_all()

    def lookup(self, stamp_ns):
        """Return ``(msg, exact)``: the message of ``stamp_ns``, else the latest, else None."""
        with self._cond:
            msg = self._by_stamp.get(int(stamp_ns))
            if msg is not None:
                return msg, True
            if not self._by_stamp:
                return None, False
            return next(reversed(self._by_stamp.values())), False

    def find(self, stamp_ns, tolerance_s, wait_s=0.0):
        """Return the message nearest ``stamp_ns`` within ``tolerance_s``, or None.

        When none is within the tolerance yet and the newest message is older than
        ``stamp_ns``, wait up to ``wait_s`` seconds for one to arrive.
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

    def _newest_stamp_ns(self):
        return next(reversed(self._by_stamp))

    def _nearest(self, stamp_ns):
        """Return (|stamp gap| ns, message) of the nearest held stamp, or (None, None)."""
        best = min(self._by_stamp, key=lambda held: abs(held - stamp_ns), default=None)
        return (None, None) if best is None else (abs(best - stamp_ns), self._by_stamp[best])
