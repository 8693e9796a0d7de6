"""Batched rotation helpers in numpy: axis-angle (Rodrigues), its derivative and its inverse.

All functions accept any leading batch shape ``(...)`` and never modify their inputs.
Axis-angle vectors ``aa`` have shape ``(..., 3)``: direction = rotation axis, norm = angle in
radians (right-hand rule). Rotation matrices have shape ``(..., 3, 3)`` and act on column
vectors (``x' = R @ x``).
"""

import numpy as np

#: Below this angle (radians) the Taylor expansions are used instead of the closed forms.
SMALL_ANGLE_RAD = 1e-6

#: Reflection across the hand's y-z plane (x -> -x): turns a right hand into a left hand.
MIRROR_X = np.diag([-1.0, 1.0, 1.0])


def skew(v):
    """Return the cross-product matrices ``[v]_x`` (..., 3, 3) of vectors ``v`` (..., 3)."""
    v = np.asarray(v, dtype=np.float64)
    out = np.zeros(v.shape[:-1] + (3, 3), dtype=np.float64)
    out[..., 0, 1] = -v[..., 2]
    out[..., 0, 2] = v[..., 1]
    out[..., 1, 0] = v[..., 2]
    out[..., 1, 2] = -v[..., 0]
    out[..., 2, 0] = -v[..., 1]
    out[..., 2, 1] = v[..., 0]
    return out


def _rodrigues_coefficients(theta):
    """Return ``sin(t)/t`` and ``(1 - cos(t))/t^2`` (...,) with series near zero."""
    small = theta < SMALL_ANGLE_RAD
    safe = np.where(small, 1.0, theta)
    t2 = theta * theta
    a = np.where(small, 1.0 - t2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - t2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    return a, b


def axis_angle_to_matrix(aa):
    """Return rotation matrices (..., 3, 3) for axis-angle vectors ``aa`` (..., 3).

    Rodrigues' formula ``R = I + a [w]_x + b [w]_x^2`` with ``a = sin(t)/t``,
    ``b = (1 - cos(t))/t^2`` and ``t = |w|``; exact to float64 round-off for every angle,
    including zero.
    """
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1)
    a, b = _rodrigues_coefficients(theta)
    k = skew(aa)
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


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


def rotation_about_z(angle_rad):
    """Return the (3, 3) rotation by ``angle_rad`` about the z (optical) axis."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
