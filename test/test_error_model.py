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
