"""Latest-frame-wins hand-off from the executor's callbacks to one worker thread.

The image callback only puts the message into a one-item slot (never blocks, never waits on
processing); if the worker has not taken the previous image yet, that image is replaced and
counted as dropped. The worker thread takes the newest image and processes it.
"""

import threading


class LatestSlot:
    """A thread-safe slot holding at most one item: a new item replaces the old one."""

    def __init__(self):
        """Create an empty, open slot."""
        self._cond = threading.Condition()
        self._item = None
        self._full = False
        self._closed = False

    def put(self, item):
        """Store ``item``; return True when it replaced an item nobody took (a drop)."""
        with self._cond:
            dropped = self._full
            self._item, self._full = item, True
            self._cond.notify()
            return dropped

    def take(self, timeout_s=None):
        """Return ``(True, item)`` when one is available (waits up to ``timeout_s``).

        Returns ``(False, None)`` on timeout or when the slot is closed.
        """
        with self._cond:
            if not self._full and not self._closed:
                self._cond.wait(timeout_s)
            if not self._full or self._closed:
                return False, None
            item, self._item, self._full = self._item, None, False
            return True, item

    def close(self):
        """Close the slot: waiting and later ``take`` calls return ``(False, None)``."""
        with self._cond:
            self._closed = True
            self._item, self._full = None, False
            self._cond.notify_all()


class FrameWorker:
    """One thread that applies ``handle(item)`` to the newest submitted item.

    ``handle`` must not raise; if it does, ``on_error(exc)`` is called and the loop goes on.
    """

    def __init__(self, handle, on_error, name='hand_mesh_worker'):
        """Create (not start) the worker."""
        self._handle = handle
        self._on_error = on_error
        self._slot = LatestSlot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        """Start the thread."""
        self._thread.start()

    def submit(self, item):
        """Hand ``item`` to the worker; return True when an unprocessed item was dropped."""
        return self._slot.put(item)

    def _run(self):
        while not self._stop.is_set():
            ok, item = self._slot.take(timeout_s=0.1)
            if not ok:
                continue
            try:
                self._handle(item)
            except Exception as exc:  # noqa: B902 - the worker must survive any bug
                try:
                    self._on_error(exc)
                except Exception:  # noqa: B902 - not even a failing error report stops it
                    pass

    def is_alive(self):
        """Return True while the thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout_s=5.0):
        """Stop the thread (the item being processed is finished first); return True if done."""
        self._stop.set()
        self._slot.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()
