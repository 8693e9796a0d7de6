"""Which cameras take part in a fused output, and at which common stamp.

Each camera offers its newest hands. A camera whose newest stamp is older than
``stale_after_s`` on the fusion clock is *stale* (a silent camera, a dead driver); the
common stamp is the newest stamp of the others; a camera more than ``sync_tolerance_s``
behind it is *out of sync* (its hands would have to be moved too far in time). Both are
left out of that output and named with their reason.
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
