"""Rotation maths for the exported lifting graph, written for few ONNX nodes.

Each function is the textbook formula re-arranged so that torch's ONNX export (opset 17)
emits a handful of operators: cross products and quaternion-to-matrix maps are one MatMul
with a constant matrix, ``atan2`` of a non-negative first argument is one ``Atan``, and the
small-angle cases need no ``Where`` (the functions used are smooth there, so a tiny floor
on a squared norm changes nothing at float32 precision). Every reshape keeps the batch axis
as ``-1`` so that no shape arithmetic is exported. The ONNX Runtime time of this graph is
per-node overhead, not arithmetic (see ``models/lifting_head.md``).

Layout: vectors are columns (..., 3, 1), rotations (..., 3, 3).
"""

import numpy as np
import torch

#: Floor of the squared half rotation angle (rad^2) in :func:`axis_angle_to_matrix`:
#: sin(h)/h is flat near 0 (relative error h^2/6 = 2e-8 there, cos(h) within 5e-8 of 1).
#: A float16 number (smallest subnormal 6e-8), so that the FP16 graph (GPU routes,
#: :mod:`hand_mesh_ros.inference.fp16_graph`) never divides by zero here.
HALF_ANGLE2_FLOOR = 1e-7
#: Floor of the squared vector part of Shepperd's (unnormalised, norm >= 2) quaternion row.
QUAT_V2_FLOOR = 1e-7
#: Added to the squared swing axis |u x v|^2 (as the numpy reference): only keeps 0 / 0 away
#: in float32 (a larger, float16-sized floor would bias swings where |v| << |u|).
SWING_SIN2_FLOOR = 1e-20


def _const(array):
    """Return a float32 tensor of ``array``."""
    return torch.tensor(np.asarray(array, dtype=np.float64), dtype=torch.float32)


def skew_basis():
    """Return E (3, 3, 3) with [u]_x = sum_k u_k E[k] (so that [u]_x v = u cross v)."""
    basis = np.zeros((3, 3, 3))
    for k in range(3):
        unit = np.eye(3)[k]
        basis[k] = np.array([np.cross(unit, np.eye(3)[i]) for i in range(3)]).T
    return basis


def quaternion_outer_map():
    """Return Q (16, 9): flat(R) = flat(q q^T) @ Q for a unit quaternion q = (w, x, y, z)."""
    terms = {  # R[i, j] as sum of coefficient * q_a q_b
        (0, 0): ((0, 0, 1), (1, 1, 1), (2, 2, -1), (3, 3, -1)),
        (0, 1): ((1, 2, 2), (0, 3, -2)), (0, 2): ((1, 3, 2), (0, 2, 2)),
        (1, 0): ((1, 2, 2), (0, 3, 2)),
        (1, 1): ((0, 0, 1), (1, 1, -1), (2, 2, 1), (3, 3, -1)),
        (1, 2): ((2, 3, 2), (0, 1, -2)), (2, 0): ((1, 3, 2), (0, 2, -2)),
        (2, 1): ((2, 3, 2), (0, 1, 2)),
        (2, 2): ((0, 0, 1), (1, 1, -1), (2, 2, -1), (3, 3, 1))}
    out = np.zeros((16, 9))
    for (i, j), entries in terms.items():
        for a, b, coef in entries:
            out[4 * a + b, 3 * i + j] += coef
    return out


def shepperd_map():
    """Return (M (9, 20), offset (20,)): flat(R) @ M + offset = 4 candidate rows + diagonal.

    Row k of the 4 x 4 candidates is 4 q_k (w, x, y, z) for the unit quaternion q of R (up
    to sign); the last 4 columns repeat the diagonal 4 q_k^2 that picks the best-conditioned
    row (Shepperd's method).
    """
    rows = (((0, 0, 1), (1, 1, 1), (2, 2, 1)), ((2, 1, 1), (1, 2, -1)),
            ((0, 2, 1), (2, 0, -1)), ((1, 0, 1), (0, 1, -1)),
            ((2, 1, 1), (1, 2, -1)), ((0, 0, 1), (1, 1, -1), (2, 2, -1)),
            ((0, 1, 1), (1, 0, 1)), ((0, 2, 1), (2, 0, 1)),
            ((0, 2, 1), (2, 0, -1)), ((0, 1, 1), (1, 0, 1)),
            ((0, 0, -1), (1, 1, 1), (2, 2, -1)), ((1, 2, 1), (2, 1, 1)),
            ((1, 0, 1), (0, 1, -1)), ((0, 2, 1), (2, 0, 1)), ((1, 2, 1), (2, 1, 1)),
            ((0, 0, -1), (1, 1, -1), (2, 2, 1)))
    mat = np.zeros((9, 20))
    offset = np.zeros(20)
    for col, entries in enumerate(rows):
        for i, j, sign in entries:
            mat[3 * i + j, col] = sign
    for k in range(4):
        mat[:, 16 + k] = mat[:, 5 * k]
    offset[[0, 5, 10, 15, 16, 17, 18, 19]] = 1.0
    return mat, offset


#: The map for (w, 2 x, 2 y, 2 z): rows of w v_k products / 2, of v_i v_k products / 4.
_QUAT_OUTER = _const(quaternion_outer_map()
                     / np.outer([1.0, 2.0, 2.0, 2.0], [1.0, 2.0, 2.0, 2.0]).reshape(16, 1))
_SHEPPERD, _SHEPPERD_OFFSET = (_const(a) for a in shepperd_map())
_GATHER_ROW = torch.zeros(4, dtype=torch.long)


def _tail(x, drop):
    """Return ``x.shape[1:-drop]`` as Python ints (constants in the export, no Shape nodes)."""
    return tuple(int(size) for size in x.shape[1:-drop])


def squared_norm(v):
    """Return |v|^2 (..., 1, 1) of columns (..., 3, 1) or rows (..., 1, 3) ``v``.

    Elementwise: ONNX Runtime runs a batch of tiny MatMuls (v^T v) slower than Mul and
    ReduceSum once the batch holds all 21 bones.
    """
    return (v * v).sum((-2, -1), keepdim=True)


def normalize(v):
    """Return columns (..., 3, 1) or rows (..., 1, 3) ``v`` divided by their norm (safe at 0)."""
    return v / torch.sqrt(squared_norm(v) + 1e-16)


def axis_angle_to_matrix(aa):
    """Return rotations (..., 3, 3) of axis-angle columns ``aa`` (..., 3, 1).

    Through the unit quaternion q = (cos h, sin(h)/(2h) aa), h = t/2: R = flat(p p^T) @ Q'
    with p = (cos h, sin(h)/h aa) (powers of two folded into Q').
    """
    half = torch.sqrt(torch.clamp((aa.transpose(-1, -2) @ aa) * 0.25, min=HALF_ANGLE2_FLOOR))
    quat = torch.cat([torch.cos(half), aa * (torch.sin(half) / half)], -2)
    tail = _tail(aa, 2)
    outer = (quat @ quat.transpose(-1, -2)).reshape((-1,) + tail + (16,))
    return (outer @ _QUAT_OUTER).reshape((-1,) + tail + (3, 3))


def matrix_to_axis_angle(rot):
    """Return axis-angle rows (..., 1, 3) of rotations ``rot`` (..., 3, 3), angles in [0, pi].

    Shepperd's method (the candidate row with the largest diagonal, picked by ArgMax and
    GatherElements), then angle = 2 atan2(|v|, |w|) = 4 atan(|v| / (|q| + |w|)), a form
    without cancellation at any angle; the sign makes w >= 0.
    """
    tail = _tail(rot, 2)
    flat = rot.reshape((-1,) + tail + (1, 9)) @ _SHEPPERD + _SHEPPERD_OFFSET
    cand, diag = torch.split(flat, [16, 4], -1)
    index = torch.argmax(diag, -1, keepdim=True) + _GATHER_ROW
    quat = torch.gather(cand.reshape((-1,) + tail + (4, 4)), -2, index)
    w, vec = torch.split(quat, [1, 3], -1)
    v2 = (vec * vec).sum(-1, keepdim=True)
    vnorm = torch.sqrt(v2 + QUAT_V2_FLOOR)
    qnorm = torch.sqrt(v2 + w * w)
    half = torch.atan(vnorm / (qnorm + torch.abs(w)))
    sign = torch.where(w < 0, -4.0, 4.0)
    return vec * (sign * half / vnorm)


def rotation_6d_to_matrix(d6):
    """Return rotations (..., 3, 3) from 6D vectors (..., 6) (two columns, Gram-Schmidt)."""
    pair = d6.reshape((-1,) + _tail(d6, 1) + (2, 3))
    a1, a2 = torch.split(pair, [1, 1], -2)
    b1 = normalize(a1)
    b2 = normalize(a2 - (a2 * b1).sum(-1, keepdim=True) * b1)
    b3 = cross_rows(b1, b2)
    return torch.cat([b1, b2, b3], -2).transpose(-1, -2)


_SKEW_ROWS = _const(np.stack([skew_basis()[k].T for k in range(3)]).reshape(3, 9))


def cross_rows(a, b):
    """Return a x b for row vectors (..., 1, 3): b @ [a]_x^T, [a]_x^T from one MatMul."""
    skew_t = (a @ _SKEW_ROWS).reshape((-1,) + _tail(a, 2) + (3, 3))
    return b @ skew_t
