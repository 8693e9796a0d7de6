"""Batched rotation helpers in numpy: axis-angle (Rodrigues), its derivatives, its inverse.

All functions accept any leading batch shape ``(...)`` and never modify their inputs.
Axis-angle vectors ``aa`` have shape ``(..., 3)``: direction = rotation axis, norm = angle in
radians (right-hand rule). Rotation matrices have shape ``(..., 3, 3)`` and act on column
vectors (``x' = R @ x``).
"""

import math

import numpy as np

#: Below this angle (radians) the Taylor expansions are used instead of the closed forms.
SMALL_ANGLE_RAD = 1e-6

#: Reflection across the hand's y-z plane (x -> -x): turns a right hand into a left hand.
MIRROR_X = np.diag([-1.0, 1.0, 1.0])


#: Added to rotation angles so that the closed forms stay finite at zero (radians).
_TINY_ANGLE_RAD = 1e-30
_EYE = np.eye(3)
#: ``v @ _SKEW_BASIS`` is the row-major flattened cross-product matrix of ``v``.
_SKEW_BASIS = np.array([[0, 0, 0, 0, 0, -1, 0, 1, 0],
                        [0, 0, 1, 0, 0, 0, -1, 0, 0],
                        [0, -1, 0, 1, 0, 0, 0, 0, 0]], dtype=np.float64)


def skew(v):
    """Return the cross-product matrices ``[v]_x`` (..., 3, 3) of vectors ``v`` (..., 3)."""
    v = np.asarray(v, dtype=np.float64)
    return (v @ _SKEW_BASIS).reshape(v.shape[:-1] + (3, 3))


def rotation_about_z(angle_rad):
    """Return the rotation matrix (3, 3) of ``angle_rad`` about the z axis (right-hand rule).

    Its upper-left (2, 2) block rotates image-plane vectors by the same angle.
    """
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def axis_angle_to_matrix_terms(aa):
    """Return rotations (..., 3, 3) of ``aa`` (..., 3) and what their ``J_r`` is built from.

    Rodrigues' formula ``R = I + a [v]_x + b [v]_x^2`` with ``t = |v|``, ``a = sin(t) / t``
    and ``b = 2 sin(t/2)^2 / t^2`` (no cancellation near zero); exact to float64 round-off
    for every angle, including zero. The terms go to :func:`right_jacobian_from_terms`.
    """
    aa = np.asarray(aa, dtype=np.float64)
    t = np.sqrt(np.einsum('...i,...i->...', aa, aa)) + _TINY_ANGLE_RAD
    sin = np.sin(t)
    inv_t = 1.0 / t
    half = np.sin(0.5 * t) * inv_t
    coef_b = (2.0 * half * half)[..., None, None]
    k = skew(aa)
    k2 = k @ k
    rot = _EYE + (sin * inv_t)[..., None, None] * k + coef_b * k2
    return rot, (t, sin, inv_t, coef_b, k, k2)


def right_jacobian_from_terms(terms):
    """Return the right Jacobians (..., 3, 3) from :func:`axis_angle_to_matrix_terms`' terms.

    ``dR/dv_i = R [J_r(v) e_i]_x`` with ``J_r = I - b [v]_x + c [v]_x^2`` and
    ``c = (t - sin t) / t^3``, whose round-off near zero is harmless because it multiplies
    ``[v]_x^2 = O(t^2)``.
    """
    t, sin, inv_t, coef_b, k, k2 = terms
    coef_c = ((t - sin) * inv_t * inv_t * inv_t)[..., None, None]
    return _EYE - coef_b * k + coef_c * k2


def axis_angle_to_matrix(aa):
    """Return rotation matrices (..., 3, 3) for axis-angle vectors ``aa`` (..., 3).

    Rodrigues' formula, as in :func:`axis_angle_to_matrix_terms`.
    """
    return axis_angle_to_matrix_terms(aa)[0]


def axis_angle_to_matrix_jacobian(aa):
    """Return ``R`` (..., 3, 3) and ``dR/daa`` (..., 3, 3, 3), the last axis indexing aa[i].

    Uses the compact form of Gallego and Yezzi (J. Math. Imaging Vis. 2015):
    ``dR/dv_i = (v_i [v]_x + [v x ((I - R) e_i)]_x) R / |v|^2``, and ``[e_i]_x`` plus its
    first-order correction for angles below :data:`SMALL_ANGLE_RAD`.
    """
    aa = np.asarray(aa, dtype=np.float64)
    rot = axis_angle_to_matrix(aa)
    theta2 = np.sum(aa * aa, axis=-1)
    small = theta2 < SMALL_ANGLE_RAD ** 2
    safe2 = np.where(small, 1.0, theta2)
    k = skew(aa)
    eye = np.eye(3)
    jac = np.empty(aa.shape[:-1] + (3, 3, 3), dtype=np.float64)
    for i in range(3):
        e_i = eye[i]
        col = e_i - rot[..., :, i]  # (I - R) e_i
        term = aa[..., i, None, None] * k + skew(np.cross(aa, col))
        closed = (term @ rot) / safe2[..., None, None]
        # Near zero: d/dv_i of (I + [v]_x + [v]_x^2 / 2)
        #   = [e_i]_x + ([e_i]_x [v]_x + [v]_x [e_i]_x) / 2
        e_skew = skew(e_i)
        series = e_skew + 0.5 * (e_skew @ k + k @ e_skew)
        jac[..., i] = np.where(small[..., None, None], series, closed)
    return rot, jac


def matrix_to_axis_angle(rot):
    """Return axis-angle vectors (..., 3) of rotation matrices ``rot`` (..., 3, 3).

    Angles are in [0, pi]; near pi the axis is taken from the symmetric part of ``R``.
    """
    rot = np.asarray(rot, dtype=np.float64)
    cos = np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1.0) * 0.5, -1.0, 1.0)
    theta = np.arccos(cos)
    vee = np.stack([rot[..., 2, 1] - rot[..., 1, 2],
                    rot[..., 0, 2] - rot[..., 2, 0],
                    rot[..., 1, 0] - rot[..., 0, 1]], axis=-1)
    sin = np.sin(theta)
    small = theta < SMALL_ANGLE_RAD
    near_pi = (np.pi - theta) < 1e-4
    safe_sin = np.where(small | near_pi, 1.0, sin)
    out = np.where(small[..., None], 0.5 * vee,
                   vee * (theta / (2.0 * safe_sin))[..., None])
    if np.any(near_pi):
        # R = 2 n n^T - I (+ O(pi - theta)): take the largest column of (sym(R) + I) / 2,
        # which is n n^T.
        sym = 0.25 * (rot + np.swapaxes(rot, -1, -2)) + 0.5 * np.eye(3)
        diag = np.diagonal(sym, axis1=-2, axis2=-1)
        idx = np.argmax(diag, axis=-1)
        col = np.take_along_axis(sym, idx[..., None, None].repeat(3, axis=-1), axis=-2)[..., 0, :]
        axis = col / np.linalg.norm(col, axis=-1, keepdims=True)
        # Pick the sign consistent with the (small) antisymmetric part.
        sign = np.where(np.sum(axis * vee, axis=-1) < 0.0, -1.0, 1.0)
        out = np.where(near_pi[..., None], axis * (sign * theta)[..., None], out)
    return out


def mirror_axis_angle(aa):
    """Return the axis-angle (..., 3) of ``M R(aa) M`` with ``M`` = :data:`MIRROR_X`.

    Mirroring a rotation across the y-z plane keeps its x component and negates y and z.
    """
    aa = np.asarray(aa, dtype=np.float64)
    return aa * np.array([1.0, -1.0, -1.0])
