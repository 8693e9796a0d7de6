"""Fused tracks: one per physical hand, with a stable id, fed by every camera that sees it.

:class:`HandFuser` owns the fused tracks. ``fuse(observations, stamp_ns)`` takes every
camera's hands (already in the fusion frame) and returns one FusedHand per physical hand at
the common stamp ``stamp_ns``:

1. tracks not fed for ``track_timeout_s`` end (their ids are never reused);
2. each camera's hands are matched to the tracks (:mod:`association`), cameras in a fixed
   order; a hand that matches no track starts one, which the next cameras can match;
3. every hand is moved to ``stamp_ns`` with its track's velocity (:mod:`motion`, fitted to
   the track's fused positions up to its last output) and each track's hands are fused
   (:mod:`fuse`); the track then refits its velocity.

A track remembers which camera track fed it, so it keeps its id while any camera still sees
the hand: a camera dropping out, or coming back with a new track id, changes nothing.
"""

from collections import deque

import numpy as np

from hand_mesh_ros.core.fusion import association, motion
from hand_mesh_ros.core.fusion.fuse import fuse_observations

#: Most fused positions a track keeps for its velocity (it keeps only the velocity window).
HISTORY_LENGTH = 32


class FusedTrack:
    """One fused hand's state: id, side, recent fused positions, camera links, last stamp."""

    def __init__(self, fused_id, side):
        """Start a track with no history and no links."""
        self.fused_id = int(fused_id)
        self.side = side
        self.links = {}           # camera -> that camera's track id
        self.history = deque(maxlen=HISTORY_LENGTH)   # (stamp_ns, wrist_m, covariance_m2)
        self.seed = None          # first observation of a track started in this cycle
        self.velocity_mps = np.zeros(3)              # at the last fused stamp
        self.velocity_covariance = np.zeros((3, 3))

    @property
    def last_stamp_ns(self):
        """Return the stamp of the last fused position (or of the seed)."""
        if self.history:
            return self.history[-1][0]
        return self.seed.stamp_ns

    def predict(self, stamp_ns):
        """Return ``(wrist_m, covariance_m2)`` predicted at ``stamp_ns`` (for matching)."""
        if not self.history:
            return self.seed.wrist_m, self.seed.covariance_m2
        stamp, wrist, covariance = self.history[-1]
        dt_s = (int(stamp_ns) - stamp) * 1e-9
        return (wrist + self.velocity_mps * dt_s,
                motion.predicted_covariance(covariance, self.velocity_covariance, dt_s,
                                            motion.ASSOCIATION_ACCEL_MPS2))

    def record(self, hand, observations, window_s):
        """Append a fused hand, refit the velocity over ``window_s``, link the cameras."""
        self.history.append((hand.stamp_ns, hand.wrist_m, hand.covariance_m2))
        while hand.stamp_ns - self.history[0][0] > window_s * 1e9:   # only the window
            self.history.popleft()
        stamps, positions, covariances = zip(*self.history)
        self.velocity_mps, self.velocity_covariance = motion.fit_velocity(
            stamps, positions, covariances, window_s, hand.stamp_ns)
        self.links = {obs.camera: obs.track_id for obs in observations}
        self.seed = None


class HandFuser:
    """Fuse several cameras' hands into fused tracks (see the module docstring)."""

    def __init__(self, gate_probability=0.99999, track_timeout_s=0.5, velocity_window_s=0.15):
        """Set the association gate, the track timeout and the velocity window."""
        self.gate2 = association.gate_distance2(gate_probability)
        self.track_timeout_s = float(track_timeout_s)
        self.velocity_window_s = float(velocity_window_s)
        self._tracks = []
        self._next_id = 1

    @property
    def track_ids(self):
        """Return the ids of the live fused tracks."""
        return [track.fused_id for track in self._tracks]

    def fuse(self, observations, stamp_ns):
        """Return the FusedHands (by id) of ``observations`` brought to ``stamp_ns``.

        Args:
            observations: HandObservations in the fusion frame, at most one per
                (camera, track_id), each checked by ``observation_problem``.
            stamp_ns: the common stamp (not older than any earlier call's).

        """
        self._end_tracks(stamp_ns)
        groups = self._associate(observations)
        fused = []
        for track, members in groups:
            moved = [motion.shifted(obs, stamp_ns, track.velocity_mps,
                                    track.velocity_covariance) for obs in members]
            hand = fuse_observations(moved, track.fused_id, stamp_ns)
            track.record(hand, members, self.velocity_window_s)
            fused.append(hand)
        return sorted(fused, key=lambda hand: hand.fused_id)

    def _end_tracks(self, stamp_ns):
        limit_ns = self.track_timeout_s * 1e9
        self._tracks = [t for t in self._tracks
                        if t.seed is not None or int(stamp_ns) - t.last_stamp_ns <= limit_ns]

    def _associate(self, observations):
        """Return ``[(track, [observations])]`` for every track fed in this cycle."""
        members = {}
        by_camera = {}
        for obs in observations:
            by_camera.setdefault(obs.camera, []).append(obs)
        for camera in sorted(by_camera):
            hands = by_camera[camera]
            tracks = list(self._tracks)
            pairs = association.assign(*self._costs(camera, hands, tracks), self.gate2)
            matched = set()
            for row, column in pairs:
                members.setdefault(id(tracks[column]), (tracks[column], []))[1].append(
                    hands[row])
                matched.add(row)
            for row, obs in enumerate(hands):
                if row not in matched:
                    track = self._start_track(obs)
                    members[id(track)] = (track, [obs])
        return list(members.values())

    def _costs(self, camera, hands, tracks):
        """Return (distances2, allowed, linked) of one camera's hands against ``tracks``."""
        distances2 = np.full((len(hands), len(tracks)), np.inf)
        allowed = np.zeros(distances2.shape, dtype=bool)
        linked = np.zeros(distances2.shape, dtype=bool)
        for column, track in enumerate(tracks):
            for row, obs in enumerate(hands):
                if obs.side != track.side:
                    continue
                wrist, covariance = track.predict(obs.stamp_ns)
                distances2[row, column] = association.mahalanobis2(
                    obs.wrist_m, obs.covariance_m2, wrist, covariance)
                allowed[row, column] = True
                linked[row, column] = track.links.get(camera) == obs.track_id
        return distances2, allowed, linked

    def _start_track(self, obs):
        track = FusedTrack(self._next_id, obs.side)
        track.seed = obs
        self._next_id += 1
        self._tracks.append(track)
        return track
