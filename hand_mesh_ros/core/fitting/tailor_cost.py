"""The tailor's cost at one parameter vector, and its Gauss-Newton linearisation.

Split in two so that Levenberg-Marquardt pays for the Jacobians only where it goes on
iterating: :meth:`TailorCost.evaluate` gives the cost (and the refined keypoints and pixels)
at ``x``; :meth:`TailorCost.linearise` completes that evaluation with half the gradient and
the Gauss-Newton Hessian, reusing its forward kinematics, projection and residuals.

Cost (units: mm, rad): robust (Huber) 2D reprojection in millimetres at the hand's depth,
the network's root-relative 3D joints, the palm held at the fused hand size, diagonal
quadratic priors, joint limits and twist (see :mod:`hand_mesh_ros.core.fitting.tailor`).
"""

from dataclasses import dataclass
import math
from typing import Optional

import numpy as np

from hand_mesh_ros.core.fitting.tailor_terms import gram_matrix, Projector

#: Square root of the weight (per mm^2) holding the hand size at the track's estimate.
SQRT_W_SIZE = 10.0
#: Residual rows: 42 pixel coordinates, 63 root-relative joint coordinates, the palm.
N_ROWS = 106


@dataclass(frozen=True)
class TailorProblem:
    """One frame's fixed data of the cost (see :meth:`HandTailor.refine`).

    Attributes:
        projector: the camera projection.
        obs: (21, 2) observed keypoints, px (invalid rows zero).
        kp_w: (21,) keypoint weights (0 = unused).
        net: (21, 3) network root-relative joints rescaled to the fused size, metres.
        valid3d: (21,) which network joints are used (the root never).
        mirror: (3,) (-1, 1, 1) for a mirrored (left) hand, else ones.
        shape_fixed: (S,) shape holding the size coefficient (and the fixed ones).
        palm_target_m: palm length the size term holds.
        prior_w: (n,) diagonal prior weights.
        prior_centre: (n,) their centres.
        size_m: the fused hand length (scales the 3D weight).
        mm_per_px: millimetres per pixel at the hand's depth.
        config: the tailor's :class:`~hand_mesh_ros.core.config.TailorConfig` (weights).

    """

    projector: Projector
    obs: np.ndarray
    kp_w: np.ndarray
    net: np.ndarray
    valid3d: np.ndarray
    mirror: np.ndarray
    shape_fixed: np.ndarray
    palm_target_m: float
    prior_w: np.ndarray
    prior_centre: np.ndarray
    size_m: float
    mm_per_px: float
    config: object


@dataclass
class Evaluation:
    """The cost at one parameter vector and what its linearisation reuses.

    ``cost`` is inf (and the rest None) where ``x`` cannot be projected; ``extra_px`` are
    the pixels of the extra points of :meth:`TailorCost.evaluate` (None if not asked or not
    projectable).
    """

    cost: float
    x: np.ndarray
    joints: Optional[np.ndarray] = None  # (21, 3) camera frame, metres
    px: Optional[np.ndarray] = None  # (21, 2)
    extra_px: Optional[np.ndarray] = None
    shape: Optional[np.ndarray] = None
    posed: Optional[object] = None
    jac_proj: Optional[np.ndarray] = None
    jac_depth: Optional[np.ndarray] = None
    sqrt_w: Optional[np.ndarray] = None
    r: Optional[np.ndarray] = None
    palm_grad: Optional[np.ndarray] = None
    delta: Optional[np.ndarray] = None
    constraints: Optional[tuple] = None


class TailorCost:
    """Cost and linearisation over the tailor's free parameters (pose, shape, translation).

    ``x`` (n,) = free bones' rotation vectors (3F), free shape coefficients, translation.
    """

    def __init__(self, kinematics, free_shapes, palm, constraints, weight_length_m):
        """Use the tailor's kinematics, free shapes, palm length and pose constraints.

        ``weight_length_m`` is the hand length the 3D joints' weight is tuned for.
        """
        self.kinematics = kinematics
        self.free_bones = kinematics.free_bones
        self.free_shapes = np.asarray(free_shapes)
        self.palm = palm
        self.constraints = constraints
        self.n_bones = kinematics.n_bones
        self.n_pose = 3 * len(self.free_bones)
        self.n_shape = len(self.free_shapes)
        self.n = self.n_pose + self.n_shape + 3
        self.weight_length_m = float(weight_length_m)

    def pack(self, pose, shape, translation):
        """Return the free parameters (n,) of pose (J, 3), shape (S,), translation (3,)."""
        return np.concatenate([pose[self.free_bones].reshape(-1), shape[self.free_shapes],
                               translation])

    def unpack(self, x, shape_fixed):
        """Return pose (J, 3), shape (S,), translation (3,) of parameters ``x``."""
        pose = np.zeros((self.n_bones, 3))
        pose[self.free_bones] = x[:self.n_pose].reshape(-1, 3)
        shape = shape_fixed.copy()
        shape[self.free_shapes] = x[self.n_pose:self.n_pose + self.n_shape]
        return pose, shape, x[-3:]

    def evaluate(self, x, problem, extra_points=None):
        """Return the :class:`Evaluation` of ``x`` (n,) for a :class:`TailorProblem`.

        ``cost`` is the sum of the weighted squared residuals (Huber on the pixels).
        ``extra_points`` (M, 3) are projected in the same camera call (perspective only).
        """
        cfg = problem.config
        pose, shape, translation = self.unpack(x, problem.shape_fixed)
        posed = self.kinematics.pose(pose, shape)
        kp_rel = posed.keypoints * problem.mirror
        joints = kp_rel + translation
        projector = problem.projector
        extra_px = None
        if extra_points is not None:
            px, jac_proj, jac_depth = projector.project(np.vstack([joints, extra_points]),
                                                        translation)
            if px is not None:
                px, jac_proj, extra_px = px[:21], jac_proj[:21], px[21:]
        else:
            px, jac_proj, jac_depth = projector.project(joints, translation)
        if px is None or not np.isfinite(px).all():
            return Evaluation(math.inf, x, extra_px=extra_px)
        # Weighted residuals r (106,): 42 pixel rows (Huber IRLS weights), 63 rows of
        # root-relative joints (mm; the root row is zero: it never moves) and the palm row.
        mm_per_px = problem.mm_per_px
        r = np.empty(N_ROWS)
        resid = (px - problem.obs) * mm_per_px
        err2 = np.einsum('ka,ka->k', resid, resid)
        err = np.sqrt(err2)
        scale = cfg.robust_scale_mm
        outside = err > scale
        w = cfg.w_reprojection * problem.kp_w
        irls = np.where(outside, scale / np.maximum(err, 1e-12), 1.0)
        sqrt_w = mm_per_px * np.sqrt(w * irls)
        cost = float(w @ np.where(outside, scale * (2.0 * err - scale), err2))
        r[:42] = (resid * (sqrt_w / mm_per_px)[:, None]).reshape(42)
        s3 = self._joint_scale(problem)
        r[42:105] = ((kp_rel - problem.net) * s3).reshape(63)
        if not problem.valid3d[1:].all():
            r[42:105][self._dropped(problem.valid3d)] = 0.0
        palm_now, palm_grad = self.palm.length_and_gradient(shape)
        r[105] = SQRT_W_SIZE * 1e3 * (palm_now - problem.palm_target_m)
        cost += float(r[42:] @ r[42:])
        delta = x - problem.prior_centre
        cost += float(problem.prior_w @ (delta * delta))
        constraints = self.constraints.terms(x[:self.n_pose], cfg.w_limits, cfg.w_twist)
        return Evaluation(cost + constraints[0], x, joints, px, extra_px, shape, posed,
                          jac_proj, jac_depth, sqrt_w, r, palm_grad, delta, constraints)

    def linearise(self, ev, problem):
        """Return (H (n, n), g (n,)): the Gauss-Newton Hessian and half the gradient at ``ev``.

        ``ev`` is a finite :class:`Evaluation` of the same ``problem``.
        """
        n, n_model = self.n, self.n - 3
        jac_pose, jac_shape = self.kinematics.jacobians(ev.posed)
        rows = np.empty((N_ROWS, n))
        jac = np.concatenate([jac_pose, jac_shape[:, :, self.free_shapes]], axis=2)
        if problem.mirror[0] < 0.0:
            jac[:, 0] *= -1.0
        jac_px = rows[:42].reshape(21, 2, n)
        np.matmul(ev.jac_proj, jac, out=jac_px[:, :, :n_model])
        jac_px[:, :, n_model:] = ev.jac_proj
        if ev.jac_depth is not None:
            jac_px[:, :, -1] += ev.jac_depth
        jac_px *= ev.sqrt_w[:, None, None]
        np.multiply(jac.reshape(63, n_model), self._joint_scale(problem),
                    out=rows[42:105, :n_model])
        rows[42:105, n_model:] = 0.0
        if not problem.valid3d[1:].all():
            rows[42:105][self._dropped(problem.valid3d)] = 0.0
        rows[105] = 0.0
        rows[105, self.n_pose:n_model] = (SQRT_W_SIZE * 1e3) * ev.palm_grad[self.free_shapes]
        hess = gram_matrix(rows)
        grad = rows.T @ ev.r
        # Diagonal quadratic priors, then the limit and twist terms on the pose.
        grad += problem.prior_w * ev.delta
        hess.flat[::n + 1] += problem.prior_w
        _, c_grad, c_hess = ev.constraints
        grad[:self.n_pose] += c_grad
        hess.flat[:self.n_pose * (n + 1):n + 1] += c_hess
        return hess, grad

    def _joint_scale(self, problem):
        """Return the square root of the 3D joints' weight, per metre of joint residual."""
        root_w = 1e3 * math.sqrt(problem.config.w_joints3d)
        return root_w * (self.weight_length_m / problem.size_m)

    @staticmethod
    def _dropped(valid3d):
        """Return (63,) which 3D residual rows are dropped (invalid joints; not the root)."""
        dropped = np.repeat(~valid3d, 3)
        dropped[:3] = False
        return dropped
