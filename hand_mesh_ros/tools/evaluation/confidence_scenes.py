"""Synthetic hands whose estimate errs the way real ones do, with the truth to judge it.

Each scene is a hand of the population's length spread in a random plausible pose
(:mod:`hand_mesh_ros.model_building.synthetic_hands`), 0.3-1.2 m in front of a camera, seen
through the errors a real monocular estimate has:

- 2D keypoints: noise of 1-2 % of the hand's size in pixels, a few keypoints off by 10 %
  (occlusion);
- the network's 3D: a mean-sized hand (it sees no metric size), 4 mm noise, its palm tilted
  by a few degrees, and on a share of hands (:data:`HARD_SHARE`) the curled fingers folded
  too short and the tilt larger, growing with the curl (the error of fists and thumbs-up);
- the network's pose: the true articulation plus noise, with the same global tilt.

:func:`run_scene` runs the pipeline's own per-hand steps on it and returns the published
estimate's wrist error beside its covariance and evidence.
"""

from dataclasses import dataclass

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.camera.decision import decide_camera
from hand_mesh_ros.core.fitting.error_model import evidence_covariance_m2, HandEvidence
from hand_mesh_ros.core.hand import hand_size, rotations
from hand_mesh_ros.core.hand.topology import FINGER_CHAINS
from hand_mesh_ros.core.hand_estimation import checked_hand
from hand_mesh_ros.core.network_outputs import NetworkHand
from hand_mesh_ros.core.track import Track
from hand_mesh_ros.model_building.synthetic_hands import sample_poses

#: Share of hands whose network 3D folds curled fingers too short.
HARD_SHARE = 0.4
#: Share of hard hands whose network 3D takes the mirrored-depth solution of its fingers.
FLIP_SHARE = 0.3
IMAGE_SIZE = (640, 480)
#: Flexing bones of each finger (thumb first) in the hand model's order: thumb metacarpal,
#: proximal, distal; then proximal, middle, distal of index, middle, ring, little.
_FINGER_BONES = (np.arange(2, 5),) + tuple(np.arange(6 + 4 * f, 9 + 4 * f) for f in range(4))


@dataclass
class Scene:
    """One synthetic hand: truth, camera, and what the network and detector report."""

    camera: CameraModel
    truth_kp_m: np.ndarray
    keypoints_px: np.ndarray
    network_rel_m: np.ndarray
    network_pose_aa: np.ndarray
    shape: np.ndarray


@dataclass
class SceneResult:
    """The published estimate of one scene, judged against its truth.

    ``fit_covariance_m2`` is the wrist covariance before the error model widened it, so that
    its coefficients can be fitted again (:func:`hand_mesh_ros.tools.evaluation.
    eval_confidence.fit_coefficients`).
    """

    wrist_error_m: np.ndarray
    translation_m: np.ndarray
    fit_covariance_m2: np.ndarray
    evidence: HandEvidence


def pinhole(focal_px, cx, cy):
    """Return a 640x480 pinhole CameraModel without distortion."""
    width, height = IMAGE_SIZE
    return CameraModel.from_camera_info_fields(
        width, height, 'plumb_bob', [0.0] * 5, [focal_px, 0.0, cx, 0.0, focal_px, cy, 0, 0, 1],
        np.eye(3).ravel(), np.zeros(12))


def _facing_rotation(rng):
    """Return an axis-angle root rotation: palm roughly towards the camera, any roll."""
    roll = rotations.axis_angle_to_matrix(np.array([0.0, 0.0, rng.uniform(-np.pi, np.pi)]))
    tilt = rotations.axis_angle_to_matrix(rng.normal(scale=0.5, size=3))
    face = rotations.axis_angle_to_matrix(np.array([np.pi, 0.0, 0.0]))
    return rotations.matrix_to_axis_angle(roll @ tilt @ face)


def _finger_curls(pose, model):
    """Return (5,) mean flexion of each finger's bones, 0 (straight) to 1 (at its limit)."""
    hi = np.maximum(model.joint_limits_max_rad[:, 0], 1e-6)
    flex = np.clip(pose[:, 0] / hi, 0.0, 1.0)
    return np.array([flex[bones].mean() for bones in _FINGER_BONES])


def _network_estimate(rng, model, pose, hard):
    """Return the network's pose (J, 3) and root-relative 3D (21, 3) for a true ``pose``.

    A hard hand's curled fingers are mis-articulated (flexion off by up to 0.6 rad times the
    curl) and folded too short, and its palm tilted more.
    """
    net_pose = pose + rng.normal(scale=0.05, size=pose.shape)
    tilt = rng.normal(scale=np.radians(3.0), size=3)
    curls = _finger_curls(pose, model)
    if hard:
        for finger, curl in enumerate(curls):
            bones = _FINGER_BONES[finger]
            net_pose[bones, 0] += rng.uniform(-1.0, 1.0) * curl
        tilt = tilt + rng.normal(scale=np.radians(25.0) * curls.mean(), size=3)
    net_pose = model.clamp_pose(net_pose)
    keypoints = model.forward(net_pose, model.zero_shape()).keypoints
    keypoints = keypoints - keypoints[0]
    if hard:
        for curl, chain in zip(curls, FINGER_CHAINS):
            fold = 1.0 - rng.uniform(0.3, 0.8) * curl
            base = keypoints[chain[0]]
            keypoints[list(chain[1:])] = base + fold * (keypoints[list(chain[1:])] - base)
    rot = rotations.axis_angle_to_matrix(tilt)
    net_pose[0] = rotations.matrix_to_axis_angle(rot @ rotations.axis_angle_to_matrix(pose[0]))
    keypoints = keypoints @ rot.T + rng.normal(scale=0.002, size=keypoints.shape)
    if hard and rng.uniform() < FLIP_SHARE:
        # The monocular depth ambiguity: the fingers' depth relative to the wrist mirrored.
        keypoints[1:, 2] = -keypoints[1:, 2]
    return net_pose, keypoints


def make_scene(rng, model, size_model, camera=None):
    """Return a random :class:`Scene` (see the module docstring)."""
    mean_m, sd_m = hand_size.population_hand_length_prior_m()
    shape = size_model.with_length(model.zero_shape(), rng.normal(mean_m, sd_m))
    pose = sample_poses(rng, 1, model.joint_limits_min_rad, model.joint_limits_max_rad,
                        global_rotation=False)[0]
    pose[0] = _facing_rotation(rng)
    camera = camera or pinhole(600.0, 320.0, 240.0)
    depth = rng.uniform(0.3, 1.2)
    centre = np.array([rng.uniform(0.15, 0.85) * IMAGE_SIZE[0],
                       rng.uniform(0.2, 0.8) * IMAGE_SIZE[1]])
    ray = np.array([(centre[0] - camera.cx) / camera.fx, (centre[1] - camera.cy) / camera.fy, 1])
    truth = model.forward(pose, shape).keypoints + depth * ray
    px = camera.project(truth)
    size_px = np.linalg.norm(px[9] - px[0])
    px = px + rng.normal(scale=rng.uniform(0.01, 0.02) * size_px, size=px.shape)
    occluded = rng.uniform(size=21) < 0.05
    px[occluded] += rng.normal(scale=0.1 * size_px, size=(occluded.sum(), 2))
    net_pose, network = _network_estimate(rng, model, pose, rng.uniform() < HARD_SHARE)
    return Scene(camera=camera, truth_kp_m=truth, keypoints_px=px, network_rel_m=network,
                 network_pose_aa=net_pose, shape=shape)


def run_scene(scene, model, tailor, config, reference_kp_m):
    """Return the :class:`SceneResult` of one scene, or None when the gates refuse the hand.

    The hand goes through the pipeline's own per-hand steps
    (:func:`~hand_mesh_ros.core.hand_estimation.checked_hand`: root recovery, tailor, gates,
    error model) as a new track.
    """
    network = NetworkHand(track_id=0, side='right', side_score=1.0, presence=1.0,
                          keypoints_px=scene.keypoints_px, pose_aa=scene.network_pose_aa,
                          shape=model.zero_shape(), joints_rel_m=scene.network_rel_m)
    decision = decide_camera(IMAGE_SIZE[0], IMAGE_SIZE[1], scene.camera)
    outcome = checked_hand(network, Track(0), decision, IMAGE_SIZE, 0.0, tailor=tailor,
                           hand_model=model, config=config, reference_joints_m=reference_kp_m)
    if outcome.estimate is None:
        return None
    estimate = outcome.estimate
    root_m = estimate.bone_transforms[0, :3, 3]
    fit_covariance = estimate.position_covariance_m2 - evidence_covariance_m2(
        root_m, outcome.evidence)
    return SceneResult(wrist_error_m=estimate.keypoints_m[0] - scene.truth_kp_m[0],
                       translation_m=root_m, fit_covariance_m2=fit_covariance,
                       evidence=outcome.evidence)
