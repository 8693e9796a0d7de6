"""One hand size: hand length (wrist crease to middle fingertip, flat hand), metres.

Hand length is what anthropometric surveys measure: distal wrist crease to the tip of the
middle finger, hand flat and straight. On 21 keypoints it is the summed segments wrist ->
middle MCP -> PIP -> DIP -> tip (:func:`hand_length_m`), so a flexed hand measures as
straight. Its population prior (both sexes, :func:`population_hand_length_prior_m`) is from

    Gordon CC et al. 2012 Anthropometric Survey of U.S. Army Personnel (ANSUR II): Methods and
    Summary Statistics. NATICK/TR-15/007, 2014 (measurement "hand length").

:class:`HandLength` measures it on the hand model and solves for the size shape coefficient
giving a target length. :class:`SizeEstimate` is one track's belief about its hand's length:
the population prior (or a user's known length), the network's per-frame size observations
and metric observations (e.g. from depth), fused as independent Gaussians. The palm
(:data:`PALM_CHAIN`, wrist -> middle MCP) is the pose-independent part of the hand length:
the scale of the plausibility gates' pixel errors and the segment the tailor holds within a
frame.
"""

from dataclasses import dataclass
import functools
import math

import numpy as np

from hand_mesh_ros.core.hand.topology import FINGER_CHAINS, MIDDLE_MCP, WRIST

#: Keypoints along which hand length is measured (wrist, middle MCP, PIP, DIP, tip).
HAND_LENGTH_CHAIN = (WRIST,) + FINGER_CHAINS[2]
#: The palm: wrist -> middle-finger MCP, the first segment of :data:`HAND_LENGTH_CHAIN`.
PALM_CHAIN = (WRIST, MIDDLE_MCP)
#: ANSUR II hand length, mm: (mean, standard deviation) for men and women.
HAND_LENGTH_MM = {'men': (194.0, 9.0), 'women': (181.0, 9.0)}
#: Relative error of the network's size that does not average out over frames (a monocular
#: network sees no metric size; about the population's relative spread).
NETWORK_BIAS_REL = 0.06
#: Relative error of one frame's network size observation.
NETWORK_FRAME_REL = 0.05
#: Standard deviation of a hand length a user states (tape measure), metres.
USER_LENGTH_SIGMA_M = 0.003
#: Frames after which the network's running mean forgets older frames.
MEMORY_FRAMES = 300


@functools.lru_cache(maxsize=1)
def population_hand_length_prior_m():
    """Return (mean, standard deviation) of adult hand length in metres, both sexes.

    The equal mixture of the men's and women's normal distributions of :data:`HAND_LENGTH_MM`
    (its mean and standard deviation, which include the difference between the sexes).
    """
    means = np.array([m for m, _ in HAND_LENGTH_MM.values()])
    sds = np.array([s for _, s in HAND_LENGTH_MM.values()])
    mean = float(means.mean())
    var = float(np.mean(sds ** 2 + means ** 2) - mean ** 2)
    return mean * 1e-3, math.sqrt(var) * 1e-3


def population_length_rel_spread():
    """Return the population's relative spread of hand length (sd / mean, about 0.059)."""
    mean, sd = population_hand_length_prior_m()
    return sd / mean


def chain_length(points, chain=HAND_LENGTH_CHAIN):
    """Return the summed segment lengths along ``chain`` of points (..., 21, 3)."""
    pts = np.asarray(points, dtype=np.float64)[..., list(chain), :]
    return np.linalg.norm(np.diff(pts, axis=-2), axis=-1).sum(axis=-1)


def hand_length_m(keypoints_m):
    """Return the hand length (...,) in metres of keypoints (..., 21, 3) in metres.

    The summed segments of :data:`HAND_LENGTH_CHAIN`.
    """
    return chain_length(keypoints_m, HAND_LENGTH_CHAIN)


class HandLength:
    """Hand length of the model as a function of its shape coefficients.

    ``length(beta) = sum_k |d_k + B_k beta|`` over the segments of the middle-finger chain of
    the rest keypoints (linear in the shape). The size coefficient is the shape direction
    closest to a uniform scale of the rest keypoints.
    """

    def __init__(self, rest_keypoints, keypoint_basis, chain=HAND_LENGTH_CHAIN):
        """Use rest keypoints (21, 3), their shape basis (21, 3, S) and a keypoint chain."""
        kp = np.asarray(rest_keypoints, dtype=np.float64)
        basis = np.asarray(keypoint_basis, dtype=np.float64)
        chain = list(chain)
        self.d0 = np.diff(kp[chain], axis=0)  # (K, 3)
        self.basis = np.diff(basis[chain], axis=0)  # (K, 3, S)
        self._basis_flat = self.basis.reshape(-1, self.basis.shape[-1])  # (3K, S)
        rel = kp - kp[:1]
        flat = np.moveaxis(basis - basis[:1], -1, 0).reshape(basis.shape[-1], -1)
        cos = np.abs(flat @ rel.reshape(-1)) / np.maximum(
            np.linalg.norm(flat, axis=1) * np.linalg.norm(rel), 1e-30)
        self.index = int(np.argmax(cos))

    def length_m(self, shape):
        """Return the hand length (metres) of shape coefficients ``shape`` (S,)."""
        seg = self.d0 + self.basis @ np.asarray(shape, dtype=np.float64)
        return float(np.sqrt(np.einsum('ka,ka->k', seg, seg)).sum())

    def length_and_gradient(self, shape):
        """Return (length, d length / d shape (S,))."""
        seg = self.d0 + (self._basis_flat @ shape).reshape(self.d0.shape)
        norms = np.sqrt((seg * seg).sum(axis=1))
        grad = (seg / np.maximum(norms, 1e-12)[:, None]).reshape(-1) @ self._basis_flat
        return float(norms.sum()), grad

    def with_length(self, shape, length_m):
        """Return a copy of ``shape`` whose size coefficient gives ``length_m`` (Newton)."""
        out = np.array(shape, dtype=np.float64)
        for _ in range(4):
            value, grad = self.length_and_gradient(out)
            slope = grad[self.index]
            if abs(float(length_m) - value) < 1e-8 or abs(slope) < 1e-12:
                break
            out[self.index] += (float(length_m) - value) / slope
        return out


@dataclass
class SizeEstimate:
    """One track's hand-length evidence (metres); see :meth:`belief`."""

    network_mean_m: float = 0.0
    network_frames: int = 0
    metric_precision: float = 0.0   # sum of 1 / sigma^2 of metric observations, 1/m^2
    metric_weighted_m: float = 0.0  # sum of length / sigma^2

    def copy(self, network=True):
        """Return a copy; ``network=False`` drops the network's observations."""
        if not network:
            return SizeEstimate(0.0, 0, self.metric_precision, self.metric_weighted_m)
        return SizeEstimate(self.network_mean_m, self.network_frames, self.metric_precision,
                            self.metric_weighted_m)

    def add_network(self, length_m):
        """Add one frame's network size observation."""
        self.network_frames = min(self.network_frames + 1, MEMORY_FRAMES)
        self.network_mean_m += (float(length_m) - self.network_mean_m) / self.network_frames

    def add_metric(self, length_m, sigma_m):
        """Add a metric observation (e.g. from an aligned depth image) with its sigma."""
        precision = 1.0 / float(sigma_m) ** 2
        self.metric_precision += precision
        self.metric_weighted_m += precision * float(length_m)

    def belief(self, known_length_m=0.0):
        """Return (mean, standard deviation) of the hand length, metres.

        Prior: the user's ``known_length_m`` (sigma :data:`USER_LENGTH_SIGMA_M`) when > 0,
        else the population prior. The network's running mean counts with variance
        ``(bias * L)^2 + (frame * L)^2 / n``; metric observations with their own sigmas.
        """
        if known_length_m > 0.0:
            mean0, sd0 = float(known_length_m), USER_LENGTH_SIGMA_M
        else:
            mean0, sd0 = population_hand_length_prior_m()
        precision = 1.0 / sd0 ** 2
        weighted = precision * mean0
        if self.network_frames > 0:
            scale = self.network_mean_m
            var = (NETWORK_BIAS_REL * scale) ** 2 + (
                NETWORK_FRAME_REL * scale) ** 2 / self.network_frames
            precision += 1.0 / var
            weighted += self.network_mean_m / var
        precision += self.metric_precision
        weighted += self.metric_weighted_m
        return weighted / precision, math.sqrt(1.0 / precision)
