"""The tailor's per-frame steps as small functions: size evidence, scale step, priors, state.

Used by :class:`~hand_mesh_ros.core.fitting.tailor.HandTailor`; each function is one named
piece of HandTailor section 3.4 (the scale step of eq. 12, the quadratic priors, the
constant-velocity track update).
"""

from dataclasses import dataclass
import math
from typing import NamedTuple, Optional

import numpy as np

from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.tailor_terms import (bone_length_scale, levenberg_marquardt,
                                                     TrackState)
from hand_mesh_ros.core.hand.hand_size import SizeEstimate

#: Frames after which the running shape estimate forgets older evidence.
MEMORY_FRAMES = 300
#: Smoothing of the translation velocity of the constant-velocity model.
VELOCITY_SMOOTHING = 0.5
#: Network 3D joints whose bone lengths are outside this ratio of the model's are ignored.
SCALE_RANGE = (0.5, 2.0)


def side_mirror(side, native_side):
    """Return the (3,) x-mirror of ``side`` for a model of ``native_side`` ((-1, 1, 1) or ones)."""
    if side not in ('left', 'right'):
        raise ValueError("side must be 'left' or 'right', got %r" % (side,))
    return np.array([-1.0 if side != native_side else 1.0, 1.0, 1.0])


def track_gap_s(state: Optional[TrackState], timestamp_s, max_gap_s) -> Optional[float]:
    """Return the seconds since ``state``'s update when in (0, ``max_gap_s``], else None."""
    if state is None:
        return None
    dt = float(timestamp_s) - state.timestamp_s
    return dt if 0.0 < dt <= max_gap_s else None


def size_evidence(track, network=True) -> SizeEstimate:
    """Return the hand-size evidence of ``track`` (a Track or None) as a SizeEstimate.

    The network's running mean comes from the track's fit state (when ``network`` and there
    is one); the metric length from ``track.metric_length``.
    """
    evidence = SizeEstimate()
    if track is None:
        return evidence
    if network and track.fit is not None:
        evidence.network_mean_m = track.fit.size_obs_mean_m
        evidence.network_frames = track.fit.size_frames
    metric = track.metric_length.belief()
    if metric is not None:
        evidence.add_metric(*metric)
    return evidence


class ScaleStep(NamedTuple):
    """Outcome of the scale step (eq. 12) and the size fusion, for one frame.

    ``observed_m``: the hand length the network's joints imply (None: unusable);
    ``length_m``, ``sigma_m``: the fused hand length; ``evidence``: the SizeEstimate with
    this frame's observation; ``shape_ref``: the shape the step used; ``shape_fixed``: it at
    the fused length; ``net``: (21, 3) the network's joints rescaled to the fused length;
    ``valid3d``: (21,) the usable network joints (none when ``observed_m`` is None).
    """

    observed_m: Optional[float]
    length_m: float
    sigma_m: float
    evidence: SizeEstimate
    shape_ref: np.ndarray
    shape_fixed: np.ndarray
    net: np.ndarray
    valid3d: np.ndarray

    def rescale_translation(self, translation_m):
        """Return ``translation_m`` scaled with the hand (depth scales with size)."""
        if self.observed_m is None:
            return translation_m
        return translation_m * (self.length_m / self.observed_m)


def network_hand_length(rest_keypoints, net, valid3d, size, shape):
    """Return the hand length the network's joints imply (eq. 12), or None.

    The model's bone lengths do not depend on the pose, so they are taken from the rest
    keypoints (21, 3) of ``shape``; ``size`` is the HandLength measure.
    """
    valid = valid3d.copy()
    valid[0] = True
    ratio = bone_length_scale(rest_keypoints, net, valid)
    if ratio is None or not SCALE_RANGE[0] < ratio < SCALE_RANGE[1]:
        return None
    return ratio * size.length_m(shape)


def scale_step(evidence, rest_keypoints, net, valid3d, size, shape_ref, known_length_m):
    """Return the :class:`ScaleStep` of one frame from the track's ``evidence``."""
    observed = network_hand_length(rest_keypoints, net, valid3d, size, shape_ref)
    fused = evidence.copy()
    if observed is not None:
        fused.add_network(observed)
    length_m, sigma_m = fused.belief(known_length_m)
    if observed is None:
        net, valid3d = net, np.zeros(len(valid3d), dtype=bool)
    else:
        net = net * (length_m / observed)
    return ScaleStep(observed, length_m, sigma_m, fused, shape_ref,
                     size.with_length(shape_ref, length_m), net, valid3d)


def translation_weights(w_temporal_translation, weight_length_m, length_m, palm_m,
                        previous_m):
    """Return the (3,) weights of the translation prediction prior (per m^2).

    The weights scale with the hand's length (scale-equivariance); depth is observed about
    (depth / size) times less precisely than x and y.
    """
    depth_ratio = palm_m / max(float(previous_m[2]), palm_m)
    return (w_temporal_translation * 1e6 * (weight_length_m / length_m) ** 2
            * np.array([1.0, 1.0, depth_ratio ** 2]))


class Priors:
    """Diagonal quadratic priors on the packed parameters (n,): weights and centres."""

    def __init__(self, n):
        """Start with no prior on ``n`` parameters."""
        self.weights = np.zeros(n)
        self.weighted_centres = np.zeros(n)

    def add(self, index, weight, centre):
        """Add ``weight * (x[index] - centre)^2``."""
        self.weights[index] += weight
        self.weighted_centres[index] += weight * np.asarray(centre)

    def add_pose(self, n_pose, weight, centre):
        """Add the weak prior towards the network's pose."""
        self.add(slice(0, n_pose), weight, centre)

    def add_shape(self, index, w_shape, w_track, track_shape):
        """Add the identity prior (towards zero) and the track's running shape."""
        self.weights[index] += w_shape
        self.add(index, w_track, track_shape)

    def add_temporal(self, x_prev, x_init, t_pred, n_pose, config, w_translation):
        """Add the temporal pose prior and the translation prediction.

        The pose prior's centre is the previous pose moved ``temporal_pose_blend`` towards the
        network's: smoothing without drift where the 2D keypoints do not pin the pose.
        """
        centre = x_prev[:n_pose] + config.temporal_pose_blend * (x_init[:n_pose]
                                                                 - x_prev[:n_pose])
        self.add(slice(0, n_pose), config.w_temporal_pose, centre)
        self.add(slice(-3, None), w_translation, t_pred)

    def diagonal(self):
        """Return (weights (n,), centres (n,))."""
        centres = np.divide(self.weighted_centres, self.weights,
                            out=np.zeros(len(self.weights)), where=self.weights > 0.0)
        return self.weights, centres


@dataclass(frozen=True)
class FitState:
    """The iterate of one fit: parameters, evaluation, normal equations and bookkeeping."""

    x: np.ndarray
    current: object
    normal: tuple
    normal_at_x: bool
    iterations: int
    converged: bool
    problem: object
    scaled: ScaleStep


def run_lm(cost, fit, iterations, min_relative_gain):
    """Return ``fit`` after at most ``iterations`` Levenberg-Marquardt steps."""
    problem = fit.problem
    normal = fit.normal if fit.normal_at_x else cost.linearise(fit.current, problem)
    x, current, normal, normal_at_x, done, converged = levenberg_marquardt(
        lambda v: cost.evaluate(v, problem), lambda ev: cost.linearise(ev, problem), fit.x,
        fit.current, normal, iterations, min_relative_gain)
    return FitState(x, current, normal, normal_at_x, fit.iterations + done, converged,
                    problem, fit.scaled)


def reprojection_error(projector, points_m, translation_m, obs, kp_w):
    """Return the mean reprojection error of camera-frame keypoints (inf if invisible)."""
    px = projector.project(points_m, translation_m)[0]
    return math.inf if px is None else mean_reprojection_error_px(px, obs, kp_w > 0.0)


def next_track_state(state, timestamp_s, max_gap_s, result, evidence):
    """Return the track's fit state after this frame's ``result`` (a TailorResult).

    The shape is a running mean over up to :data:`MEMORY_FRAMES` frames; the velocity is
    smoothed and kept only across gaps within ``max_gap_s``.
    """
    translation = np.array(result.translation_m, dtype=np.float64)
    if state is None:
        return TrackState(pose=result.pose_aa, shape=result.shape, shape_frames=1,
                          translation=translation, velocity=np.zeros(3),
                          timestamp_s=float(timestamp_s),
                          size_obs_mean_m=evidence.network_mean_m,
                          size_frames=evidence.network_frames)
    dt = track_gap_s(state, timestamp_s, max_gap_s)
    velocity = np.zeros(3)
    if dt is not None:
        measured = (translation - state.translation) / dt
        velocity = state.velocity + VELOCITY_SMOOTHING * (measured - state.velocity)
    frames = min(state.shape_frames + 1, MEMORY_FRAMES)
    return TrackState(pose=result.pose_aa, shape=state.shape + (result.shape - state.shape)
                      / frames, shape_frames=frames, translation=translation,
                      velocity=velocity, timestamp_s=float(timestamp_s),
                      size_obs_mean_m=evidence.network_mean_m,
                      size_frames=evidence.network_frames)
