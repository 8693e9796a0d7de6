"""RGB-D scenes whose true hand differs from the estimate the way real ones do.

A true hand (pose, shape, wrist) is rendered into a registered depth image together with its
forearm (a tapered tube leaving the wrist away from the fingers) in front of a tilted
background plane, then degraded like a stereo sensor
(:func:`~hand_mesh_ros.tools.evaluation.depth_synthesis.degrade`: noise ``c z^2``, holes,
flying pixels, misregistration) and with extra holes along the hand's silhouette (stereo
matching fails at occlusion edges). The estimate the fit starts from is the true hand with
its finger bones perturbed, its global rotation turned by a fixed angle about a random axis
and its size off by the population spread of hand lengths; the observed 2D keypoints are the
true hand's, with pixel noise.
"""

from dataclasses import dataclass
import math

import cv2
import numpy as np

from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.tailor_terms import rotation_log
from hand_mesh_ros.core.hand.hand_size import population_hand_length_prior_m
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix
from hand_mesh_ros.core.types import HandEstimate
from hand_mesh_ros.tools.evaluation import depth_synthesis

#: Forearm tube: radius at the wrist and at its far end, length (metres), sides.
FOREARM_RADII_M = (0.028, 0.036)
FOREARM_LENGTH_M = 0.22
FOREARM_SIDES = 20


def finger_bones(model):
    """Return the bones below the model's wrist bone (the fingers' bones)."""
    return np.array([bone for bone in range(model.n_bones) if model.parents[bone] > 0])


def perturb_pose(model, pose_aa, rng, finger_sigma_deg, global_deg):
    """Return ``pose_aa`` (J, 3) with N(0, sigma) per finger bone axis, the root turned.

    The root is turned by ``global_deg`` about a random axis (camera frame).
    """
    pose = np.array(pose_aa, dtype=np.float64)
    fingers = finger_bones(model)
    pose[fingers] += rng.normal(0.0, math.radians(finger_sigma_deg), pose[fingers].shape)
    pose[fingers] = model.clamp_pose(pose)[fingers]
    axis = rng.normal(size=3)
    axis *= math.radians(global_deg) / np.linalg.norm(axis)
    pose[0] = rotation_log(axis_angle_to_matrix(axis[None])[0] @ axis_angle_to_matrix(pose[:1])[0])
    return pose


def population_length_factor(rng, length_m):
    """Return a true / estimated hand length factor drawn from the population's spread."""
    mean, sd = population_hand_length_prior_m()
    return float(np.clip(rng.normal(mean, sd), mean - 2.5 * sd, mean + 2.5 * sd) / length_m)


def forearm_mesh(wrist_m, towards_elbow, radii_m=FOREARM_RADII_M, length_m=FOREARM_LENGTH_M,
                 sides=FOREARM_SIDES):
    """Return (vertices (2 sides, 3), faces) of a tapered tube from the wrist to the elbow."""
    axis = np.asarray(towards_elbow, dtype=np.float64)
    axis /= np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    angles = np.linspace(0.0, 2.0 * math.pi, sides, endpoint=False)
    ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * w
    start = wrist_m + 0.01 * axis
    near = start + radii_m[0] * ring
    far = start + length_m * axis + radii_m[1] * ring
    i = np.arange(sides)
    j = (i + 1) % sides
    faces = np.concatenate([np.stack([i, j, sides + i], axis=1),
                            np.stack([j, sides + j, sides + i], axis=1)])
    return np.vstack([near, far]), faces


def silhouette_holes(depth_m, rng, width_px=2, keep=0.3, step_m=0.02):
    """Return ``depth_m`` with most pixels near its depth edges set to 0 (no data)."""
    valid = depth_m > 0.0
    near = cv2.erode(np.where(valid, depth_m, 1e3).astype(np.float32),
                     np.ones((3, 3), np.uint8))
    far = cv2.dilate(depth_m.astype(np.float32), np.ones((3, 3), np.uint8))
    edge = (far - near > step_m) & valid
    band = cv2.dilate(edge.astype(np.uint8), np.ones((2 * width_px - 1,) * 2, np.uint8)) > 0
    out = depth_m.copy()
    out[band & (rng.random(depth_m.shape) > keep)] = 0.0
    return out


def render_scene(model, hand_output, translation_m, camera, rng, noise_coeff_per_m,
                 rays=None, forearm=True):
    """Return the degraded (H, W) float32 depth of one true hand (+ forearm) and background.

    ``hand_output`` is ``model.forward(...)`` of the true hand (wrist at the origin).
    """
    verts = [hand_output.vertices + translation_m]
    faces = [hand_output.faces]
    if forearm:
        towards_elbow = -hand_output.bone_frames[0, :3, 1]
        arm_v, arm_f = forearm_mesh(np.asarray(translation_m), towards_elbow)
        verts.append(arm_v)
        faces.append(arm_f)
    rays = depth_synthesis.pixel_rays(camera) if rays is None else rays
    clean = depth_synthesis.scene_depth(verts, faces, camera, rays, rng,
                                        float(translation_m[2]))
    depth = depth_synthesis.degrade(clean, rng, noise_coeff_per_m=noise_coeff_per_m)[0]
    return silhouette_holes(depth, rng)


@dataclass(frozen=True)
class PerturbedCase:
    """A true hand, its depth image and observed keypoints, and a perturbed estimate of it.

    Attributes:
        true_joints_m: (21, 3) the true anatomical joint centres, camera frame.
        depth_m: (H, W) float32 degraded depth image.
        observed_px: (21, 2) the true keypoints projected, with pixel noise.
        estimate: a HandEstimate of the perturbed hand (colour only: full intrinsics).

    """

    true_joints_m: np.ndarray
    depth_m: np.ndarray
    observed_px: np.ndarray
    estimate: HandEstimate


def hand_estimate(model, pose_aa, shape, translation_m, camera, observed_px, side='right',
                  track_id=1, hand_length_m=0.18):
    """Return the HandEstimate of a posed model hand (colour-only, covariance 1 cm^2)."""
    out = model.forward(pose_aa, shape, side=side)
    bones = np.array(out.bone_frames)
    bones[:, :3, 3] += translation_m
    keypoints_px = camera.project(out.keypoints + translation_m)
    return HandEstimate(
        track_id=track_id, side=side, side_score=1.0, score=1.0, keypoints_px=keypoints_px,
        observed_keypoints_px=np.asarray(observed_px, dtype=np.float64),
        joints_m=out.joint_centres + translation_m, vertices_m=out.vertices + translation_m,
        faces=out.faces, bone_transforms=bones, bone_parents=model.parents,
        bone_names=model.bone_names, pose_coefficients=np.asarray(pose_aa, dtype=np.float64),
        shape_coefficients=np.asarray(shape, dtype=np.float64), hand_model='anny',
        hand_length_m=hand_length_m,
        reprojection_error_px=mean_reprojection_error_px(keypoints_px, observed_px),
        position_mode='full_intrinsics', confidence=0.5,
        position_covariance_m2=np.eye(3) * 1e-4, keypoints_m=out.keypoints + translation_m)


def perturbed_case(model, size, camera, rng, true_pose, true_shape, true_translation_m, *,
                   finger_deg, global_deg, length_factor, noise_coeff_per_m=0.005,
                   keypoint_noise_px=1.5, side='right', rays=None, forearm=True):
    """Return a :class:`PerturbedCase` of the true hand (pose, shape, wrist translation).

    The estimate's pose is :func:`perturb_pose`'s, its hand length the true one divided by
    ``length_factor`` and its wrist on the true wrist's ray at the depth that size gives
    from one colour image (``t_true / length_factor``). ``size`` is the model's HandLength.
    """
    true = model.forward(true_pose, true_shape, side=side)
    t_true = np.asarray(true_translation_m, dtype=np.float64)
    depth = render_scene(model, true, t_true, camera, rng, noise_coeff_per_m, rays, forearm)
    observed = (camera.project(true.keypoints + t_true)
                + rng.normal(0.0, keypoint_noise_px, (21, 2)))
    pose = perturb_pose(model, true_pose, rng, finger_deg, global_deg)
    length = size.length_m(true_shape)
    shape = size.with_length(true_shape, length / length_factor)
    estimate = hand_estimate(model, pose, shape, t_true / length_factor, camera, observed,
                             side, hand_length_m=length / length_factor)
    return PerturbedCase(true.joint_centres + t_true, depth, observed, estimate)
