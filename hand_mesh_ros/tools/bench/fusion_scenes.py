"""Synthetic multi-camera hand scenes with known truth (fusion tests and bench_fusion).

The hands are the project's hand model (rest pose, anatomical joint centres). Each camera
sees a hand like a monocular pipeline does: the whole hand shifted along the camera's ray
through the wrist by a depth error (the dominant error of monocular root recovery: the
hand-size prior scales depth), plus a small error across the ray; the reported covariance is
the one of that error model, with a per-camera miscalibration of its size.
"""

from functools import lru_cache

import numpy as np

from hand_mesh_ros.core.fusion.observation import HandObservation, in_frame
from hand_mesh_ros.core.fusion.sync import choose_cameras

#: Camera period of the sequences, nanoseconds (30 Hz).
PERIOD_NS = 33_333_333
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


def world_observations(cameras, hands, stamps_ns, rng, track_ids=None, scales=None):
    """Return every camera's observation of every hand, in 'world'.

    ``hands``: [(side, wrist_world_m, rot_world_hand)]; ``stamps_ns``: {camera: stamp}.
    """
    out = []
    for camera, t_world_cam in cameras.items():
        for k, (side, wrist, rot) in enumerate(hands):
            track_id = (track_ids or {}).get(camera, 0) + k + 1
            obs = observe(camera, t_world_cam, wrist, rot, stamps_ns[camera], rng,
                          track_id=track_id, side=side,
                          covariance_scale=(scales or {}).get(camera, 1.0))
            out.append(in_frame(obs, t_world_cam, 'world'))
    return out


def circle(t_s, centre, radius_m=0.1, speed_rad_s=2.0, phase=0.0):
    """Return the point at ``t_s`` on a horizontal circle around ``centre``."""
    angle = phase + speed_rad_s * t_s
    return np.asarray(centre) + radius_m * np.array([np.cos(angle), np.sin(angle), 0.0])


def run_sequence(fuser, cameras, hands_at, n_frames, rng, offsets_ns=None, present=None,
                 track_ids=None, sync_tolerance_s=0.1):
    """Feed ``n_frames`` camera periods through ``fuser`` like the node does; return outputs.

    ``hands_at(t_s)`` -> [(side, wrist, rot)]; ``present(camera, frame)`` -> bool;
    ``track_ids(camera, frame)`` -> the camera's first track id. Returns [(stamp, hands)].
    """
    offsets_ns = offsets_ns or {}
    latest = {}
    outputs = []
    for frame in range(n_frames):
        for camera in cameras:
            if present is not None and not present(camera, frame):
                continue
            stamp = frame * PERIOD_NS + offsets_ns.get(camera, 0)
            ids = {camera: track_ids(camera, frame)} if track_ids else None
            latest[camera] = world_observations(
                {camera: cameras[camera]}, hands_at(stamp * 1e-9), {camera: stamp}, rng,
                track_ids=ids)
        stamps = {camera: obs[0].stamp_ns for camera, obs in latest.items() if obs}
        now_ns = frame * PERIOD_NS + max(offsets_ns.values(), default=0)
        common, used, _ = choose_cameras(stamps, now_ns, 0.5, sync_tolerance_s)
        if common is None:
            continue
        observations = [obs for camera in used for obs in latest[camera]]
        outputs.append((common, fuser.fuse(observations, common)))
    return outputs
