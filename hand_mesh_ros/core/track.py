"""One hand track's state, in one object owned by the pipeline.

The tracker gives each hand a track id; the pipeline keeps a :class:`Track` per live id,
created when the id appears and dropped when the tracker drops it. Everything a later frame
needs about the hand lives here:

- ``fit``: the tailor's temporal state (last pose, running shape, translation and velocity,
  the network's running hand-size evidence), :class:`TrackState`; None before the first fit
  and after :meth:`Track.reset_fit`. Its last pose is the published one: a depth fit that
  re-poses the hand seeds the next frame with its pose (:meth:`Track.seed_pose`);
- ``metric_length``: the hand's metric length observed in depth (:class:`MetricLength`),
  the one owner of that number; the tailor's size belief and the depth fusion's prior both
  read it;
- ``published``: the last published wrist position and time, for the speed gate.
"""

from dataclasses import dataclass, field, replace
import math
from typing import Optional, Tuple

import numpy as np

from hand_mesh_ros.core.fitting.tailor_terms import TrackState

#: Observations' worth of evidence a metric hand length keeps (so it can follow a change).
METRIC_MEMORY_FRAMES = 300


@dataclass
class MetricLength:
    """A hand's metric length (metres): an inverse-variance running mean with capped evidence.

    ``max_frames`` caps the evidence at that many of its best observations' worth.
    """

    max_frames: int = METRIC_MEMORY_FRAMES
    mean_m: Optional[float] = None
    variance_m2: float = math.inf
    best_variance_m2: float = math.inf

    def observe(self, length_m: float, sigma_m: float) -> Tuple[float, float]:
        """Fuse one observation (metres, its sigma); return (length, sigma) after it.

        Raises ValueError unless both are finite and positive.
        """
        length_m, sigma_m = float(length_m), float(sigma_m)
        if not (math.isfinite(length_m) and math.isfinite(sigma_m)
                and length_m > 0.0 and sigma_m > 0.0):
            raise ValueError('hand length and its sigma must be finite and positive, got '
                             '%r, %r' % (length_m, sigma_m))
        var = max(sigma_m, 1e-6) ** 2
        if self.mean_m is None:
            self.mean_m, self.variance_m2, self.best_variance_m2 = length_m, var, var
        else:
            self.best_variance_m2 = min(self.best_variance_m2, var)
            held = max(self.variance_m2, self.best_variance_m2 / self.max_frames)
            self.mean_m += held / (held + var) * (length_m - self.mean_m)
            self.variance_m2 = held * var / (held + var)
        return self.belief()

    def belief(self) -> Optional[Tuple[float, float]]:
        """Return (length, sigma) in metres, or None before the first observation."""
        if self.mean_m is None:
            return None
        return self.mean_m, math.sqrt(self.variance_m2)


@dataclass
class PublishedWrist:
    """The last published wrist position (3,) of a track and its time (seconds)."""

    root_m: np.ndarray
    timestamp_s: float

    def speed_mps(self, root_m: np.ndarray, timestamp_s: float,
                  max_gap_s: float) -> Optional[float]:
        """Return the wrist speed from here to ``root_m`` at ``timestamp_s``, or None.

        None when the gap is not in (0, ``max_gap_s``].
        """
        dt = float(timestamp_s) - self.timestamp_s
        if not 0.0 < dt <= max_gap_s:
            return None
        return float(np.linalg.norm(np.asarray(root_m, dtype=np.float64) - self.root_m)) / dt


@dataclass
class Track:
    """The state of one hand track (see the module docstring)."""

    track_id: int
    fit: Optional[TrackState] = None
    metric_length: MetricLength = field(default_factory=MetricLength)
    published: Optional[PublishedWrist] = None

    def reset_fit(self) -> None:
        """Drop the fit's temporal state (the next fit starts from the network alone)."""
        self.fit = None

    def seed_pose(self, pose_aa: np.ndarray) -> None:
        """Make ``pose_aa`` (J, 3) the fit's last pose; nothing without a fit state."""
        if self.fit is not None:
            self.fit = replace(self.fit, pose=np.array(pose_aa, dtype=np.float64))

    def reset(self) -> None:
        """Drop everything learnt about the hand (e.g. under another camera model)."""
        self.fit = None
        self.metric_length = MetricLength()
        self.published = None

    def publish(self, root_m: np.ndarray, timestamp_s: float) -> None:
        """Remember the wrist position published for this track at ``timestamp_s``."""
        self.published = PublishedWrist(np.array(root_m, dtype=np.float64), float(timestamp_s))

    def speed_mps(self, root_m: np.ndarray, timestamp_s: float,
                  max_gap_s: float) -> Optional[float]:
        """Return the wrist speed since the last published hand, or None (none, or too old)."""
        if self.published is None:
            return None
        return self.published.speed_mps(root_m, timestamp_s, max_gap_s)


class TrackBook:
    """The pipeline's :class:`Track` per live track id."""

    def __init__(self):
        """Start with no track."""
        self._tracks = {}

    def get(self, track_id: int) -> Track:
        """Return the track of ``track_id``, created on first use."""
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = Track(int(track_id))
        return track

    def keep_only(self, track_ids) -> None:
        """Drop every track whose id is not in ``track_ids``."""
        for track_id in set(self._tracks) - set(track_ids):
            del self._tracks[track_id]

    def reset_all(self) -> None:
        """Reset every track's state (ids stay)."""
        for track in self._tracks.values():
            track.reset()

    def reset_fits(self) -> None:
        """Drop every track's fit and metric length (a new tailor configuration)."""
        for track in self._tracks.values():
            track.reset_fit()
            track.metric_length = MetricLength()
