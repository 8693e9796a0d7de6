"""Which cameras take part in a fused output, and at which common stamp.

Each camera offers its newest hands. A camera whose newest stamp is older than
``stale_after_s`` on the fusion clock is *stale* (a silent camera, a dead driver); the
common stamp is the newest stamp of the others; a camera more than ``sync_tolerance_s``
behind it is *out of sync* (its hands would have to be moved too far in time). Both are
left out of that output and named with their reason.

An output is made once every camera taking part has sent hands since the last output, or
when the oldest of those new messages has waited ``max_wait_s`` (:func:`output_due`): a
camera whose message is a few milliseconds late is waited for rather than left to a
one-camera output, and a silent or slow camera delays outputs by ``max_wait_s`` at most.
"""

#: Reasons a camera is left out of a fused output.
STALE = 'stale'
OUT_OF_SYNC = 'out_of_sync'


def choose_cameras(latest_stamps_ns, now_ns, stale_after_s, sync_tolerance_s):
    """Return ``(common_stamp_ns or None, used cameras, {camera: reason})``.

    Args:
        latest_stamps_ns: {camera: stamp of its newest hands}.
        now_ns: the fusion clock.
        stale_after_s: largest age of a camera's newest stamp (0: never stale).
        sync_tolerance_s: largest time a camera's hands are moved to the common stamp.

    """
    left_out = {}
    fresh = {}
    for camera, stamp_ns in latest_stamps_ns.items():
        if stale_after_s > 0.0 and now_ns - stamp_ns > stale_after_s * 1e9:
            left_out[camera] = STALE
        else:
            fresh[camera] = stamp_ns
    if not fresh:
        return None, [], left_out
    common_ns = max(fresh.values())
    used = []
    for camera, stamp_ns in sorted(fresh.items()):
        if common_ns - stamp_ns > sync_tolerance_s * 1e9:
            left_out[camera] = OUT_OF_SYNC
        else:
            used.append(camera)
    return common_ns, used, left_out


def output_due(new_since_ns, now_ns, max_wait_s):
    """Return True when a fused output is due.

    Args:
        new_since_ns: {camera taking part: arrival time (ns, same clock as ``now_ns``) of
            its oldest message not yet fused, or None when it sent nothing new}.
        now_ns: the clock of the arrival times.
        max_wait_s: longest a new message waits for the other cameras (0 = never waits).

    """
    arrivals = [t for t in new_since_ns.values() if t is not None]
    if not arrivals:
        return False
    if len(arrivals) == len(new_since_ns):
        return True
    return now_ns - min(arrivals) >= max_wait_s * 1e9
