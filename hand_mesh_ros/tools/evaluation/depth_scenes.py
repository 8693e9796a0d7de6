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

import math

import cv2
import numpy as np

from hand_mesh_ros.core.fitting.kinematics_jacobian import rodrigues
from hand_mesh_ros.core.fitting.tailor_terms import rotation_log
from hand_mesh_ros.core.hand.anatomy import population_hand_length_prior_m
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
    pose = model.clamp_pose(pose)
    axis = rng.normal(size=3)
    axis *= math.radians(global_deg) / np.linalg.norm(axis)
    pose[0] = rotation_log(rodrigues(axis[None])[0] @ rodrigues(pose[:1])[0])
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
