"""Synthetic hands for training and evaluating the lifting step (numpy, seeded).

Poses follow the hand model's joint limits (``joint_limits_min_rad``/``_max_rad``, local
x = flexion, y = twist, z = abduction) with finger synergies:

- one grasp level per hand plus per-finger deviations; the ring finger follows the middle
  finger and the little finger the ring finger more closely than index follows middle;
- PIP flexion drives DIP flexion (DIP ~ 2/3 PIP, the tendon coupling), MCP flexion follows
  the finger's curl with its own spread;
- a spread level fans the fingers out (abduction of index and little finger the most);
  ring and little metacarpals cup with the grasp;
- thumb: its own opposition level for the CMC, MCP and IP flexion coupled;
- small independent twists; the wrist bone stays at rest (its rotation equals the root's
  for the keypoints); the root is a uniformly random rotation.

Shapes are Gaussian in the model's coefficients (the lifting's shape prior
:data:`hand_mesh_ros.model_building.lifting.SHAPE_SIGMA`, clipped at 2.5 sigma).
Keypoint noise imitates MediaPipe's world landmarks: Gaussian per coordinate with a random
per-hand level, plus occasional larger errors on single keypoints.
"""

import numpy as np

from hand_mesh_ros.core.hand.topology import FINGER_CHAINS
from hand_mesh_ros.model_building.lifting import shape_sigma

#: Keypoint chains of the four fingers (thumb excluded; it has its own synergy below).
FINGERS = FINGER_CHAINS[1:]
#: How closely each finger's curl follows its neighbour (index, middle, ring, little).
FOLLOW = (0.5, 0.0, 0.8, 0.8)
SPREAD_GAIN = (-1.0, -0.2, 0.4, 1.0)


def random_rotations(rng, n):
    """Return ``n`` uniformly distributed rotations as axis-angle vectors (n, 3)."""
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    quat *= np.where(quat[:, :1] < 0, -1.0, 1.0)
    vec = quat[:, 1:]
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    angle = 2.0 * np.arctan2(norm, quat[:, :1])
    return vec * angle / np.maximum(norm, 1e-12)


def sample_poses(rng, n, limits_min_rad, limits_max_rad, global_rotation=True):
    """Return random poses (n, J, 3) axis-angle within the limits (J, 3), with synergies."""
    lo = np.asarray(limits_min_rad, dtype=np.float64)
    hi = np.asarray(limits_max_rad, dtype=np.float64)
    pose = np.zeros((n,) + lo.shape)
    grasp = rng.beta(0.8, 1.0, size=n)
    spread = rng.uniform(-0.3, 1.0, size=n)
    curl_prev = grasp
    curls = []
    for f, follow in enumerate(FOLLOW):
        own = np.clip(grasp + rng.normal(0.0, 0.35, size=n), -0.15, 1.0)
        curl = np.clip(follow * curl_prev + (1.0 - follow) * own
                       + rng.normal(0.0, 0.08, size=n), -0.15, 1.0)
        curls.append(curl)
        curl_prev = curl
    for f, (meta, prox, mid, dist) in enumerate(FINGERS):
        curl = curls[f]
        mcp = curl * hi[prox, 0] * rng.uniform(0.5, 1.1, size=n) + rng.normal(0, 0.15, size=n)
        pip = np.clip(curl + rng.normal(0.0, 0.15, size=n), -0.05, 1.0) * hi[mid, 0]
        pose[:, prox, 0] = mcp
        pose[:, mid, 0] = pip
        pose[:, dist, 0] = pip * rng.uniform(0.5, 0.8, size=n) + rng.normal(0, 0.05, size=n)
        pose[:, prox, 2] = (SPREAD_GAIN[f] * spread * 0.6 * hi[prox, 2] * (1.0 - 0.5 * curl)
                            + rng.normal(0.0, 0.05, size=n))
        pose[:, meta, 0] = grasp * hi[meta, 0] * rng.uniform(0.0, 1.0, size=n)
        for bone in (meta, prox, mid, dist):
            pose[:, bone, 1] = rng.normal(0.0, 0.3, size=n) * hi[bone, 1]
    thumb = rng.uniform(0.0, 1.0, size=n)
    for bone in (2, 3, 4):
        span = hi[bone] - lo[bone]
        centre = 0.5 * (hi[bone] + lo[bone])
        pose[:, bone] = centre + span * rng.uniform(-0.35, 0.35, size=(n, 3))
    pose[:, 2, 0] = lo[2, 0] + (hi[2, 0] - lo[2, 0]) * np.clip(
        thumb + rng.normal(0, 0.2, size=n), 0, 1)
    pose[:, 3, 0] = lo[3, 0] + (hi[3, 0] - lo[3, 0]) * np.clip(
        0.6 * thumb + rng.uniform(0.0, 0.4, size=n), 0, 1)
    pose[:, 4, 0] = np.clip(pose[:, 3, 0] * rng.uniform(0.5, 1.5, size=n)
                            + rng.normal(0, 0.1, size=n), lo[4, 0], hi[4, 0])
    pose[:, 1] = 0.0
    pose[:, 1:] = np.clip(pose[:, 1:], lo[1:], hi[1:])
    if global_rotation:
        pose[:, 0] = random_rotations(rng, n)
    return pose


def sample_shapes(rng, n, shape_names):
    """Return random shape coefficients (n, S) (Gaussian, clipped at 2.5 sigma)."""
    sigma = shape_sigma(shape_names)
    return np.clip(rng.normal(size=(n, len(sigma))), -2.5, 2.5) * sigma


def add_keypoint_noise(rng, keypoints_m, sigma_range_m=(0.003, 0.008), outlier_rate=0.05,
                       outlier_sigma_m=0.015):
    """Return a noisy copy of keypoints (n, 21, 3), metres; the input is not modified.

    Each hand draws its noise level uniformly from ``sigma_range_m`` (per coordinate);
    each keypoint is an outlier with probability ``outlier_rate`` (extra Gaussian error of
    ``outlier_sigma_m`` per coordinate).
    """
    keypoints_m = np.asarray(keypoints_m, dtype=np.float64)
    n = keypoints_m.shape[0]
    sigma = rng.uniform(*sigma_range_m, size=(n, 1, 1))
    noise = rng.normal(size=keypoints_m.shape) * sigma
    outlier = rng.uniform(size=keypoints_m.shape[:-1] + (1,)) < outlier_rate
    noise = noise + outlier * rng.normal(size=keypoints_m.shape) * outlier_sigma_m
    return keypoints_m + noise


def make_dataset(model, seed, n, noisy):
    """Return a seeded held-out set for ``model`` (a numpy HandModel): dict of arrays.

    Keys: ``pose_aa`` (n, J, 3), ``shape`` (n, S), ``vertices_m`` (n, V, 3) and
    ``keypoints_m`` (n, 21, 3) (ground truth, wrist at the origin), ``input_m`` (n, 21, 3)
    (the keypoints, with :func:`add_keypoint_noise` if ``noisy``).
    """
    rng = np.random.default_rng(seed)
    pose = sample_poses(rng, n, model.joint_limits_min_rad, model.joint_limits_max_rad)
    shape = sample_shapes(rng, n, model.shape_names)
    out = model.forward(pose, shape)
    keypoints = out.keypoints
    inputs = add_keypoint_noise(rng, keypoints) if noisy else keypoints.copy()
    return {'pose_aa': pose, 'shape': shape, 'vertices_m': out.vertices,
            'keypoints_m': keypoints, 'input_m': inputs}


def perturb_keypoint_definitions(rng, keypoints_m, root_rot, rate=0.5, sigma_m=0.003,
                                 thumb_cmc_shift=0.5):
    """Return keypoints (n, 21, 3) whose definitions differ from the model's (a copy).

    Another keypoint detector places its landmarks at slightly different anatomical points
    (MediaPipe's thumb CMC sits much nearer the wrist than the model's thumb metacarpal
    origin). For a fraction ``rate`` of the hands: a fixed offset per keypoint, Gaussian with
    ``sigma_m`` per coordinate in the hand frame (rotated by ``root_rot`` (n, 3, 3)), and
    the thumb CMC moved towards the wrist by a uniform fraction in [0, ``thumb_cmc_shift``].
    """
    keypoints_m = np.asarray(keypoints_m, dtype=np.float64)
    n = keypoints_m.shape[0]
    hit = (rng.uniform(size=(n, 1, 1)) < rate).astype(np.float64)
    offsets = rng.normal(size=keypoints_m.shape) * sigma_m
    offsets[:, 0] = 0.0
    offsets = np.einsum('nij,nkj->nki', root_rot, offsets)
    shift = rng.uniform(0.0, thumb_cmc_shift, size=(n, 1))
    offsets[:, 1] += shift * (keypoints_m[:, 0] - keypoints_m[:, 1])
    return keypoints_m + hit * offsets
