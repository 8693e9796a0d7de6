"""The per-hand error model: evidence of a wrong estimate widens the covariance."""

import math

import numpy as np
import pytest

from hand_mesh_ros.core.fitting import error_model, uncertainty
from hand_mesh_ros.core.fitting.error_model import HandEvidence

GAINS = {'floor': 0.01, 'network_error': 0.5, 'bone_shortening': 0.1,
         'reprojection_error': 1.0, 'lateral': 0.5}


def test_no_evidence_adds_only_the_floor():
    none = HandEvidence(0.0, 0.0, 0.0)
    p = np.array([0.1, 0.0, 0.6])
    cov = error_model.evidence_covariance_m2(p, none, GAINS)
    s = GAINS['floor']
    lateral = GAINS['lateral'] * s * np.linalg.norm(p)
    expected = s ** 2 * np.outer(p, p) + lateral ** 2 * np.eye(3)
    np.testing.assert_allclose(cov, expected)


@pytest.mark.parametrize('field', ['network_error', 'bone_shortening', 'reprojection_error'])
def test_each_term_widens_the_covariance_mostly_along_the_ray(field):
    p = np.array([0.05, -0.02, 0.5])
    ray = p / np.linalg.norm(p)
    base = HandEvidence(0.05, 0.1, 0.01)
    worse = HandEvidence(**{**base.__dict__, field: getattr(base, field) + 0.3})
    cov_base = error_model.evidence_covariance_m2(p, base, GAINS)
    cov_worse = error_model.evidence_covariance_m2(p, worse, GAINS)
    assert np.all(np.linalg.eigvalsh(cov_worse - cov_base) >= -1e-15)
    along = ray @ cov_worse @ ray
    across = np.trace(cov_worse) - along
    assert along > across / 2.0
    assert (uncertainty.probability_within(cov_worse)
            < uncertainty.probability_within(cov_base) + 1e-12)


def test_evidence_from_gate_figures_ignores_what_is_missing_or_not_finite():
    figures = {'network_error': 0.2, 'network_bone_ratio_min': 0.7,
               'reprojection_error': 0.05}
    evidence = HandEvidence.from_gate_figures(figures)
    assert evidence == HandEvidence(0.2, pytest.approx(0.3), 0.05)
    odd = HandEvidence.from_gate_figures({'network_error': None,
                                          'network_bone_ratio_min': math.nan,
                                          'reprojection_error': math.inf})
    assert odd == HandEvidence(0.0, 0.0, 0.0)
    # A longer-than-mean shortest bone is no shortening; huge evidence is clipped.
    assert HandEvidence.from_gate_figures({'network_bone_ratio_min': 1.3}).bone_shortening == 0
    assert HandEvidence(1e9, 0.0, 0.0).as_array()[0] == error_model.MAX_EVIDENCE


def test_the_shipped_coefficients_are_finite_and_non_negative():
    values = np.array(list(error_model.COEFFICIENTS.values()))
    assert np.all(np.isfinite(values)) and np.all(values >= 0.0)
    assert error_model.COEFFICIENTS['floor'] > 0.0
    assert max(error_model.COEFFICIENTS[k] for k in
               ('network_error', 'bone_shortening', 'reprojection_error')) > 0.0


def test_the_pipeline_step_publishes_less_confidence_when_the_network_3d_contradicts_its_2d():
    from dataclasses import replace

    from hand_mesh_ros.core.config import PipelineConfig, TailorConfig
    from hand_mesh_ros.core.fitting.tailor import HandTailor
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    from hand_mesh_ros.tools.evaluation import confidence_scenes as scenes

    model = load_hand_model()
    config = PipelineConfig(tailor=TailorConfig(temporal=False))
    tailor = HandTailor(model, config.tailor)
    reference = model.forward(model.zero_pose(), model.zero_shape()).keypoints
    rng = np.random.default_rng(4)
    compared = 0
    for _ in range(6):
        scene = scenes.make_scene(rng, model, tailor.size)
        consistent = replace(scene, network_rel_m=scene.truth_kp_m - scene.truth_kp_m[0])
        flipped = consistent.network_rel_m.copy()
        flipped[1:, 2] = -flipped[1:, 2]        # the fingers' depth mirrored
        good = scenes.run_scene(consistent, model, tailor, config, reference)
        bad = scenes.run_scene(replace(consistent, network_rel_m=flipped), model, tailor,
                               config, reference)
        if good is None or bad is None:
            continue
        compared += 1
        assert bad.evidence.network_error > good.evidence.network_error
        added = [error_model.evidence_covariance_m2(r.translation_m, r.evidence)
                 for r in (good, bad)]
        assert np.trace(added[1]) > np.trace(added[0])
        published = [uncertainty.probability_within(r.fit_covariance_m2 + extra)
                     for r, extra in zip((good, bad), added)]
        assert published[1] < published[0]
    assert compared >= 3
