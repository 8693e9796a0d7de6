"""Refit from 2D alone: a thumbs-up and a fist the network got wrong are recovered."""

import math

import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import TailorConfig
from hand_mesh_ros.core.fitting.plausibility import joints3d_trust
from hand_mesh_ros.core.fitting.refit_2d import (PosePrior, refit_from_2d, start_poses,
                                                 template_pose)
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.track import Track
from hand_mesh_ros.tools.evaluation import mesh_metrics

FOCAL_PX = 600.0


@pytest.fixture(scope='module')
def tailor():
    return HandTailor(load_hand_model(), TailorConfig(temporal=False))


@pytest.fixture(scope='module')
def prior(tailor):
    return PosePrior.from_joint_limits(tailor.model, tailor.free_bones)


def _camera():
    k = [FOCAL_PX, 0.0, 330.0, 0.0, FOCAL_PX, 235.0, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(640, 480, 'plumb_bob', [0.0] * 5, k,
                                               np.eye(3).ravel(), np.zeros(12))


def _scene(tailor, template, root_aa, side, depth_m=0.4, noise_px=1.0, seed=0):
    """Return (true keypoints (21, 3) in the camera frame, noisy pixels (21, 2))."""
    model = tailor.model
    pose = template_pose(model, template)
    pose[0] = root_aa
    length_m, _ = tailor.hand_length_m(None)
    shape = tailor.size.with_length(model.zero_shape(), length_m)
    keypoints = model.forward(pose, shape, side=side).keypoints + [0.03, -0.02, depth_m]
    rng = np.random.default_rng(seed)
    pixels = _camera().project(keypoints) + rng.normal(0.0, noise_px, (21, 2))
    return keypoints, pixels


def _refit(tailor, prior, pixels, side):
    length_m, length_sd_m = tailor.hand_length_m(None)
    flat = tailor.model.zero_pose()
    flat[0] = [math.pi, 0.0, 0.0]
    return refit_from_2d(tailor, side, pixels, _camera(), network_pose_aa=flat,
                         hand_length_m=length_m, hand_length_sd_m=length_sd_m, prior=prior)


@pytest.mark.parametrize('template, root_aa, side', [
    ('thumbs_up', [0.3, 1.4, 0.2], 'right'),
    ('thumbs_up', [-0.4, -1.2, 0.3], 'left'),
    ('fist', [2.6, 0.4, -0.3], 'right'),
])
def test_a_curled_hand_is_recovered_from_its_2d(tailor, prior, template, root_aa, side):
    truth, pixels = _scene(tailor, template, root_aa, side)
    refit = _refit(tailor, prior, pixels, side)
    assert refit.error_px < 2.5
    assert refit.translation_m[2] == pytest.approx(truth[0, 2], rel=0.15)
    pa_mm = 1e3 * mesh_metrics.pa_mean_point_error(
        (refit.keypoints_m - refit.keypoints_m[0])[None], (truth - truth[0])[None])[0]
    assert pa_mm < 12.0
    assert refit.limit_excess_rad < 0.05
    sigma_m = np.sqrt(np.diag(refit.position_covariance_m2))
    assert np.all(sigma_m > 0.0) and abs(refit.translation_m[2] - truth[0, 2]) < 4 * sigma_m[2]


def test_shuffled_keypoints_are_not_explained(tailor, prior):
    _, pixels = _scene(tailor, 'thumbs_up', [0.3, 1.4, 0.2], 'right')
    real = _refit(tailor, prior, pixels, 'right')
    shuffled = _refit(tailor, prior, pixels[np.random.default_rng(1).permutation(21)],
                      'right')
    assert shuffled.error_px > 8.0 * real.error_px


def test_starts_and_prior(tailor, prior):
    model = tailor.model
    names = [name for name, _ in start_poses(model, model.zero_pose())]
    assert names == ['network', 'fist', 'flat', 'thumbs_up']
    fist = template_pose(model, 'fist')
    assert np.all(model.within_limits(fist)) and fist[:, 0].max() > 1.0
    assert np.all(np.isinf(prior.sigma_rad[:3]))
    lower = model.joint_limits_min_rad[tailor.free_bones[1:]].reshape(-1)
    upper = model.joint_limits_max_rad[tailor.free_bones[1:]].reshape(-1)
    assert prior.sigma_rad[3:] == pytest.approx(np.maximum((upper - lower) / math.sqrt(12.0),
                                                           1e-3))


def test_joints3d_trust_falls_with_the_network_error(tailor):
    truth, _ = _scene(tailor, 'flat', [math.pi, 0.0, 0.0], 'right')
    rel, root = truth - truth[0], truth[0]
    size_px = FOCAL_PX * np.linalg.norm(rel[9]) / root[2]
    trust = [joints3d_trust(e * size_px, rel, root, FOCAL_PX, 0.25)
             for e in (0.0, 0.125, 0.1875, 0.25, 0.5)]
    assert trust == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])


def test_the_tailor_weighs_the_3d_term_by_its_trust(tailor):
    truth, pixels = _scene(tailor, 'flat', [math.pi, 0.0, 0.0], 'right', noise_px=0.0)
    model = tailor.model
    bent = truth - truth[0]
    bent[5:9] = bent[5] + 0.5 * (bent[5:9] - bent[5])  # the network's 3D index finger
    pose = template_pose(model, 'flat')
    pose[0] = [math.pi, 0.0, 0.0]
    args = (Track(7), pixels, bent, pose, model.zero_shape(), truth[0], _camera(), 0.0,
            'right')
    trusted = tailor.refine(*args, joints3d_trust=1.0)
    ignored = tailor.refine(*args, joints3d_trust=0.0)
    assert ignored.reprojection_error_after_px < trusted.reprojection_error_after_px
