"""Synthetic multi-camera hand scenes with known truth, for the fusion tests and benchmark.

The hands are the project's hand model (rest pose, anatomical joint centres). Each camera
sees a hand like a monocular pipeline does: the whole hand shifted along the camera's ray
through the wrist by a depth error (the dominant error of monocular root recovery: the
hand-size prior scales depth), plus a small error across the ray; the reported covariance is
the one of that error model, with a per-camera miscalibration of its size.
"""

from functools import lru_cache

import numpy as np

from hand_mesh_ros.core.fusion.observation import HandObservation

#: Depth error along the ray (1 sigma) relative to the depth: about 24 mm median 3D error
#: at 0.8 m, the figure measured for one camera with true intrinsics.
DEPTH_REL_SIGMA = 0.035
#: Error across the ray (1 sigma), metres.
LATERAL_SIGMA_M = 0.003


@lru_cache(maxsize=2)
def hand_joints_m(side='right'):
    """Return (21, 3) joint centres of the rest hand in its wrist frame (wrist at 0)."""
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    model = load_hand_model()
    out = model.forward(model.zero_pose(), side=side)
    return out.joint_centres - out.joint_centres[0]


def look_at(position_m, target_m, up=(0.0, 0.0, 1.0)):
    """Return (4, 4) T_world_cam of an optical frame (z forward, y down) at ``position_m``."""
    position = np.asarray(position_m, dtype=np.float64)
    z = np.asarray(target_m, dtype=np.float64) - position
    z /= np.linalg.norm(z)
    x = np.cross(z, -np.asarray(up, dtype=np.float64))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, :3] = np.stack([x, y, z], axis=1)
    t[:3, 3] = position
    return t


def ray_covariance(wrist_cam_m, lateral_sigma_m, depth_sigma_m):
    """Return the (3, 3) covariance of an error of ``depth_sigma_m`` along the wrist's ray."""
    ray = np.asarray(wrist_cam_m, dtype=np.float64)
    ray = ray / np.linalg.norm(ray)
    return (lateral_sigma_m ** 2 * (np.eye(3) - np.outer(ray, ray))
            + depth_sigma_m ** 2 * np.outer(ray, ray))


def observe(camera, t_world_cam, wrist_world_m, rot_world_hand, stamp_ns, rng, track_id=1,
            side='right', covariance_scale=1.0):
    """Return the HandObservation (camera frame) one camera makes of one true hand."""
    t_cam_world = np.linalg.inv(t_world_cam)
    rot = t_cam_world[:3, :3] @ rot_world_hand
    wrist = t_cam_world[:3, :3] @ wrist_world_m + t_cam_world[:3, 3]
    joints = hand_joints_m(side) @ rot.T + wrist
    depth_sigma = DEPTH_REL_SIGMA * float(np.linalg.norm(wrist))
    ray = wrist / np.linalg.norm(wrist)
    lateral = rng.normal(0.0, LATERAL_SIGMA_M, 3)
    error = rng.normal(0.0, depth_sigma) * ray + lateral - (lateral @ ray) * ray
    covariance = ray_covariance(wrist, LATERAL_SIGMA_M, depth_sigma) * covariance_scale ** 2
    return HandObservation(
        camera=camera, track_id=track_id, side=side, stamp_ns=int(stamp_ns),
        frame_id=camera + '_optical', wrist_m=wrist + error, rotation=rot,
        joints_m=joints + error, covariance_m2=covariance, score=0.9, side_score=0.95,
        confidence=0.5, position_mode='full_intrinsics')


def two_cameras(angle_deg=90.0, distance_m=1.0, target=(0.0, 0.0, 1.0)):
    """Return {camera: T_world_cam} of two cameras ``angle_deg`` apart around ``target``."""
    out = {}
    for name, angle in (('cam_a', 0.0), ('cam_b', np.radians(angle_deg))):
        position = np.asarray(target) + distance_m * np.array(
            [np.cos(angle), np.sin(angle), 0.3])
        out[name] = look_at(position, target)
    return out
