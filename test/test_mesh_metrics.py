"""Metric definitions checked against cases computed by hand."""

import numpy as np
import pytest

from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix
from hand_mesh_ros.tools.evaluation import mesh_metrics


def test_mean_point_error_by_hand():
    pred = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    target = np.array([[[3.0, 4.0, 0.0], [1.0, 0.0, 2.0]]])
    # distances 5 and 2 -> mean 3.5
    np.testing.assert_allclose(mesh_metrics.mean_point_error(pred, target), [3.5])


def test_procrustes_recovers_a_known_similarity_transform():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(2, 21, 3))
    rot = axis_angle_to_matrix(np.array([0.3, -1.2, 0.7]))
    scale, shift = 1.7, np.array([0.5, -2.0, 3.0])
    # pred = inverse transform of target, so aligning pred gives target back exactly
    pred = ((target - shift) / scale) @ rot
    aligned = mesh_metrics.procrustes_align(pred, target)
    np.testing.assert_allclose(aligned, target, atol=1e-10)
    np.testing.assert_allclose(mesh_metrics.pa_mean_point_error(pred, target), 0.0, atol=1e-10)
    assert np.all(mesh_metrics.mean_point_error(pred, target) > 0.1)


def test_procrustes_does_not_reflect():
    # A mirrored point set cannot be aligned by a rotation: the error stays positive.
    target = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    pred = target * np.array([-1.0, 1.0, 1.0])
    assert mesh_metrics.pa_mean_point_error(pred, target)[0] > 0.05
    # ... whereas the same set rotated by 90 degrees about z aligns exactly.
    rotated = target @ axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2])).T
    assert mesh_metrics.pa_mean_point_error(rotated, target)[0] < 1e-12


def test_f_score_on_a_tiny_point_set():
    target = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
    # nearest distances pred->target: 0.1, 0.2, 0.9 ; target->pred: 0.1, 0.2, 0.8, 0.9
    pred = np.array([[0.1, 0, 0], [1.2, 0, 0], [3.9, 0, 0]])
    f, precision, recall = mesh_metrics.f_score(pred, target, 0.5)
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 4)
    assert f == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))    # = 4/7
    f, precision, recall = mesh_metrics.f_score(pred, target, 0.85)
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(3 / 4)
    assert f == pytest.approx(12 / 17)
    assert mesh_metrics.f_score(pred, target, 0.95) == (1.0, 1.0, 1.0)
    assert mesh_metrics.f_score(pred + 10.0, target, 0.5) == (0.0, 0.0, 0.0)


def test_acceleration_of_a_quadratic_trajectory_is_its_second_difference():
    t = np.arange(10, dtype=np.float64)
    accel = np.array([0.3, -0.4, 1.2])       # x(t) = x0 + v t + a t^2 / 2
    joints = np.stack([np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
                       + np.array([0.1, 0.2, 0.0]) * ti + 0.5 * accel * ti ** 2 for ti in t])
    per_frame = mesh_metrics.joint_acceleration(joints)
    assert per_frame.shape == (8,)
    np.testing.assert_allclose(per_frame, np.linalg.norm(accel), rtol=1e-12)
    assert mesh_metrics.mean_acceleration(joints) == pytest.approx(np.linalg.norm(accel))
    # (T, 3) input: a single point; a constant velocity has zero acceleration.
    assert mesh_metrics.mean_acceleration(np.outer(t, [1.0, 2.0, 3.0])) == pytest.approx(0.0)


def test_pck_and_auc_by_hand():
    target = np.zeros((1, 4, 2))
    pred = np.array([[[1.0, 0.0], [0.0, 3.0], [6.0, 8.0], [30.0, 0.0]]])   # errors 1, 3, 10, 30
    np.testing.assert_allclose(mesh_metrics.pck(pred, target, [0.5, 1.0, 5.0, 10.0, 50.0]),
                               [0.0, 0.25, 0.5, 0.75, 1.0])
    # PCK(t) over [0, 20]: 0 below 1, 1/4 on [1, 3), 1/2 on [3, 10), 3/4 on [10, 20]:
    # area = 0.25 * 2 + 0.5 * 7 + 0.75 * 10 = 11.5 -> AUC = 11.5 / 20 = 0.575
    assert mesh_metrics.pck_auc(pred, target, 20.0, steps=20001) == pytest.approx(0.575,
                                                                                  abs=1e-3)
    assert mesh_metrics.pck_auc(target, target, 20.0) == pytest.approx(1.0)
