"""Per-hand evidence of a wrong estimate, turned into position uncertainty.

The fit's covariance (:mod:`hand_mesh_ros.core.fitting.uncertainty`) sees keypoint noise, the
hand-length prior and the camera mode: in practice a function of depth. A hand whose network
3D is wrong (curled fingers folded too short, a tilted palm) is wrong in ways that covariance
cannot see, but each hand carries evidence of it, all dimensionless:

``network_error``
    Mean 2D error of the network's own root-relative 3D at its best root (root recovery's
    residual), in hand sizes: the network's 3D cannot explain its own 2D.
``bone_shortening``
    ``1 - r`` for the shortest bone ratio ``r`` of the network's 3D to the mean hand
    (0 when no bone is shorter): curled fingers folded too short shrink the hand the depth
    is scaled from.
``reprojection_error``
    Mean 2D error of the published hand against the observed keypoints, in hand sizes: the
    fit could not explain the 2D either.

Each term is a relative position sigma; they add in quadrature, with a floor for what the
fit's covariance misses on every hand::

    s = sqrt(floor^2 + (a_net * network_error)^2 + (a_bone * bone_shortening)^2
             + (a_reproj * reprojection_error)^2)

and the wrist covariance gains ``s^2 p p^T`` (along the viewing ray ``p``, where a wrong
scale moves the hand) plus ``(b_lateral * s * |p|)^2`` on every axis (the wrist misplaced
relative to the hand's body). :data:`COEFFICIENTS` were fitted by
``hand-mesh eval confidence --fit`` on synthetic hands whose network 3D errs the observed way
(see :mod:`hand_mesh_ros.tools.evaluation.confidence_scenes`).
"""

from dataclasses import dataclass
import math

import numpy as np

#: Relative sigma per unit of evidence, and the lateral share (see the module docstring).
COEFFICIENTS = {'floor': 0.0175, 'network_error': 0.176, 'bone_shortening': 0.0972,
                'reprojection_error': 0.2342, 'lateral': 0.4718}
#: Evidence above this is clipped (a gate refuses such hands anyway); keeps sigma finite.
MAX_EVIDENCE = 2.0


@dataclass(frozen=True)
class HandEvidence:
    """Dimensionless evidence of a wrong estimate (see the module docstring)."""

    network_error: float
    bone_shortening: float
    reprojection_error: float

    @classmethod
    def from_gate_figures(cls, figures):
        """Return the evidence in the plausibility gates' figures of one hand.

        Missing or non-finite figures count as no evidence (0).
        """
        def finite(key, default):
            value = figures.get(key)
            return float(value) if value is not None and math.isfinite(value) else default

        return cls(network_error=finite('network_error', 0.0),
                   bone_shortening=max(0.0, 1.0 - finite('network_bone_ratio_min', 1.0)),
                   reprojection_error=finite('reprojection_error', 0.0))

    def as_array(self):
        """Return (3,) [network_error, bone_shortening, reprojection_error], clipped."""
        values = np.array([self.network_error, self.bone_shortening, self.reprojection_error])
        return np.clip(np.nan_to_num(values, nan=0.0), 0.0, MAX_EVIDENCE)


def relative_sigma(evidence, coefficients=None):
    """Return the relative position sigma ``s`` (>= 0) of ``evidence`` (a HandEvidence)."""
    coefficients = COEFFICIENTS if coefficients is None else coefficients
    gains = np.array([coefficients['floor'], coefficients['network_error'],
                      coefficients['bone_shortening'], coefficients['reprojection_error']])
    return float(np.linalg.norm(gains * np.concatenate([[1.0], evidence.as_array()])))


def evidence_covariance_m2(position_m, evidence, coefficients=None):
    """Return the (3, 3) covariance (m^2) that ``evidence`` adds at ``position_m`` (3,)."""
    coefficients = COEFFICIENTS if coefficients is None else coefficients
    p = np.asarray(position_m, dtype=np.float64)
    s = relative_sigma(evidence, coefficients)
    lateral = coefficients['lateral'] * s * float(np.linalg.norm(p))
    return s * s * np.outer(p, p) + lateral * lateral * np.eye(3)
