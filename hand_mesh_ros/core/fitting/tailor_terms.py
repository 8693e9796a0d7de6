"""Terms of the tailor's cost: projection, robust weights, pose priors and the hand-size step.

Everything here is small and vectorised; :mod:`hand_mesh_ros.core.fitting.tailor` assembles it.
Units: pixels for 2D residuals, millimetres for 3D residuals, radians for pose components.
"""

from dataclasses import dataclass
import math

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraMode, DEFAULT_HFOV_DEG, nominal_pinhole
from hand_mesh_ros.core.errors import TailorError
from hand_mesh_ros.core.fitting.least_squares import damped_step
from hand_mesh_ros.core.hand.rotations import matrix_to_axis_angle
from hand_mesh_ros.core.hand.topology import KEYPOINT_PARENTS

#: OpenBLAS multi-threads a GEMM from m * n * k >= 2^18 (4 x SMP_THRESHOLD_MIN).
_BLAS_SINGLE_THREAD_MNK = 1 << 18
#: Child and parent keypoints of the 20 bones of the keypoint tree.
_BONE_CHILD = np.arange(1, 21)
_BONE_PARENT = np.asarray(KEYPOINT_PARENTS[1:])
#: Fewest finite, positively weighted 2D keypoints accepted.
MIN_KEYPOINTS = 6


@dataclass
class TrackState:
    """Temporal state of one track of the tailor (its last solution and running estimates)."""

    pose: np.ndarray
    shape: np.ndarray
    shape_frames: int
    translation: np.ndarray
    velocity: np.ndarray
    timestamp_s: float
    size_obs_mean_m: float
    size_frames: int


class Projector:
    """Projection of camera-frame points to raw-image pixels, with Jacobians.

    Perspective: the full :class:`~hand_mesh_ros.core.camera.camera.CameraModel` (distortion
    included). Weak perspective (HandTailor 3.5; no camera model, or a camera in
    ``weak_perspective`` mode): every point is projected at the root's depth,
    ``u = f * (X_xy) / t_z + c`` with a nominal focal length ``f`` and centre ``c``.
    """

    def __init__(self, camera=None, image_size=None, hfov_deg=DEFAULT_HFOV_DEG,
                 min_depth_m=0.02):
        """Use ``camera``; without one build the nominal weak-perspective camera."""
        self.camera = camera
        self.min_depth_m = min_depth_m
        weak = camera is None or CameraMode(camera.mode) == CameraMode.WEAK_PERSPECTIVE
        self.weak = weak
        if camera is None:
            focal, self.centre_px = nominal_pinhole(image_size, hfov_deg)
            self.focal_px = np.array([focal, focal])
        elif weak:
            self.focal_px = np.array([camera.fx, camera.fy])
            self.centre_px = np.array([camera.cx, camera.cy])
        self.mode = CameraMode.WEAK_PERSPECTIVE if weak else CameraMode(camera.mode)

    def mean_focal_px(self):
        """Return the mean focal length (px) of the projection."""
        if self.weak:
            return float(np.mean(self.focal_px))
        return 0.5 * (float(self.camera.fx) + float(self.camera.fy))

    def project(self, points_m, translation_m):
        """Return px (N, 2), d px / d point (N, 2, 3) and d px / d t_z extra (N, 2) or None.

        ``points_m`` (N, 3) are camera-frame points, ``translation_m`` (3,) the root. Returns
        None for px when a point is behind ``min_depth_m`` (perspective) or the root is.
        """
        if not self.weak:
            if points_m[:, 2].min() < self.min_depth_m:
                return None, None, None
            px, jac = self.camera.project_with_jacobian(points_m)
            return px, jac, None
        depth = translation_m[2]
        if depth < self.min_depth_m:
            return None, None, None
        scale = self.focal_px / depth
        px = points_m[:, :2] * scale + self.centre_px
        jac = np.zeros((len(points_m), 2, 3))
        jac[:, 0, 0] = scale[0]
        jac[:, 1, 1] = scale[1]
        return px, jac, -(px - self.centre_px) / depth


def gram_matrix(rows):
    """Return ``rows.T @ rows`` (n, n) for (m, n) ``rows``, in single-threaded BLAS calls.

    OpenBLAS runs a GEMM on several threads once m * n * k reaches 2^18; for matrices this
    small that only adds synchronisation, which stalls for milliseconds on a busy machine.
    The product is summed over row blocks that stay under the threshold.
    """
    n = rows.shape[1]
    block = max(1, (_BLAS_SINGLE_THREAD_MNK - 1) // max(n * n, 1))
    out = rows[:block].T @ rows[:block]
    for start in range(block, rows.shape[0], block):
        part = rows[start:start + block]
        out += part.T @ part
    return out


def bone_length_scale(model_keypoints, observed_keypoints, valid=None):
    """Return the closed-form scale aligning model bone lengths to observed ones (eq. 12).

    ``s = sum(l_model * l_obs) / sum(l_model^2)`` over the 20 bones of the keypoint tree whose
    end points are both valid; None when no bone is usable.
    """
    model_bones = model_keypoints[_BONE_CHILD] - model_keypoints[_BONE_PARENT]
    obs_bones = observed_keypoints[_BONE_CHILD] - observed_keypoints[_BONE_PARENT]
    model_len = np.sqrt(np.einsum('ka,ka->k', model_bones, model_bones))
    obs_len = np.sqrt(np.einsum('ka,ka->k', obs_bones, obs_bones))
    use = np.isfinite(obs_len) & (model_len > 0.0)
    if valid is not None:
        use &= valid[_BONE_CHILD] & valid[_BONE_PARENT]
    if not use.any():
        return None
    used = model_len[use]
    denom = float(used @ used)
    scale = float(used @ obs_len[use]) / denom
    return scale if np.isfinite(scale) and scale > 0.0 else None


class PoseConstraints:
    """Joint limits (soft hinges) and the unnatural-twist terms on the free pose parameters.

    Twist (HAMR eq. 6-7, HandTailor eq. 10): for every finger bone the component about the
    bone axis (y) is pulled to zero; for hinge bones (the last two levels of the tree: middle
    and distal phalanges, thumb IP) sideways bending (z) is pulled to zero and backward
    bending (x < 0) is penalised. Components are the bone's axis-angle in its rest frame.
    """

    def __init__(self, model, free_bones, levels):
        """Build per-parameter bounds and masks (3F,) for ``free_bones``."""
        free_bones = np.asarray(free_bones)
        self.lower = model.joint_limits_min_rad[free_bones].reshape(-1)
        self.upper = model.joint_limits_max_rad[free_bones].reshape(-1)
        depth = np.zeros(model.n_bones, dtype=int)
        for d, level in enumerate(levels):
            depth[level] = d
        max_depth = depth.max()
        twist = np.zeros((len(free_bones), 3))
        hinge_side = np.zeros((len(free_bones), 3))
        hinge_back = np.zeros((len(free_bones), 3))
        for f, bone in enumerate(free_bones):
            if model.parents[bone] < 0:
                continue
            twist[f, 1] = 1.0
            if depth[bone] >= max_depth - 1:
                hinge_side[f, 2] = 1.0
                hinge_back[f, 0] = 1.0
        self.quadratic_mask = (twist + hinge_side).reshape(-1)
        self.back_mask = hinge_back.reshape(-1).astype(bool)

    def terms(self, pose_params, w_limits, w_twist):
        """Return the cost, half its gradient (3F,) and half its Hessian diagonal (3F,)."""
        over = pose_params - np.minimum(np.maximum(pose_params, self.lower), self.upper)
        # Twist and sideways residuals, plus backward bending (x < 0) of hinge bones.
        backward = self.back_mask & (pose_params < 0.0)
        twist_mask = self.quadratic_mask + backward
        twist = twist_mask * pose_params
        cost = w_limits * float(over @ over) + w_twist * float(twist @ twist)
        grad = w_limits * over + w_twist * twist
        hess = w_limits * (over != 0.0) + w_twist * twist_mask
        return cost, grad, hess


def rotation_log(rot):
    """Return the rotation vector (3,) of one rotation matrix ``rot`` (3, 3)."""
    cos = max(-1.0, min(1.0, 0.5 * (rot[0, 0] + rot[1, 1] + rot[2, 2] - 1.0)))
    angle = math.acos(cos)
    sin = math.sin(angle)
    if sin < 1e-4 or angle < 1e-4:  # near 0 or pi: the careful general routine
        return matrix_to_axis_angle(rot)
    scale = 0.5 * angle / sin
    return np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0],
                     rot[1, 0] - rot[0, 1]]) * scale


def nearest_equivalent_rotation(aa, reference):
    """Return the rotation vector (3,) of the same rotation as ``aa`` nearest ``reference``.

    ``a * t`` and ``a * (t + 2 pi k)`` are the same rotation; priors between rotation vectors
    need both in the same chart.
    """
    aa = np.asarray(aa, dtype=np.float64)
    angle = math.sqrt(float(aa @ aa))
    ref = np.asarray(reference, dtype=np.float64)
    if angle < 1e-12:
        ref_angle = math.sqrt(float(ref @ ref))
        if ref_angle < np.pi:
            return aa.copy()
        return ref * (2.0 * np.pi / ref_angle)
    # Along the axis the candidates are t + 2 pi k; the nearest to the reference's projection.
    along = float(aa @ ref) / angle
    k = round((along - angle) / (2.0 * np.pi))
    return aa * (1.0 + 2.0 * np.pi * k / angle)


def check_inputs(model, keypoints_px, keypoint_weights, joints_rel_m, init_pose_aa, init_shape,
                 init_translation_m, side):
    """Validate and copy the tailor's inputs; raise TailorError for unusable data.

    Returns (keypoints (21, 2), weights (21,), joints (21, 3), valid 3D joints (21,), pose,
    shape, translation); invalid keypoints get weight zero, invalid joints are zeroed.
    """
    obs = np.array(keypoints_px, dtype=np.float64)
    joints = np.array(joints_rel_m, dtype=np.float64)
    pose = np.array(init_pose_aa, dtype=np.float64)
    shape = np.array(init_shape, dtype=np.float64)
    translation = np.array(init_translation_m, dtype=np.float64)
    weights = (np.ones(21) if keypoint_weights is None
               else np.array(keypoint_weights, dtype=np.float64))
    if (obs.shape != (21, 2) or joints.shape != (21, 3) or weights.shape != (21,)
            or pose.shape != (model.n_bones, 3) or shape.shape != (model.n_shapes,)
            or translation.shape != (3,)):
        raise ValueError('expected keypoints_px (21, 2), keypoint_weights (21,), '
                         f'joints_rel_m (21, 3), init_pose_aa ({model.n_bones}, 3), '
                         f'init_shape ({model.n_shapes},), init_translation_m (3,)')
    if side not in ('left', 'right'):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if not (np.isfinite(pose).all() and np.isfinite(shape).all()
            and np.isfinite(translation).all()):
        raise TailorError('the initial pose, shape or translation is not finite')
    valid = np.isfinite(obs).all(axis=1) & np.isfinite(weights) & (weights > 0.0)
    if np.count_nonzero(valid) < MIN_KEYPOINTS:
        raise TailorError(f'{np.count_nonzero(valid)} usable keypoints, at least '
                          f'{MIN_KEYPOINTS} needed')
    used = obs[valid]
    if (used.max(axis=0) - used.min(axis=0)).max() < 1e-6:
        raise TailorError('all keypoints are at the same pixel')
    weights = np.where(valid, weights, 0.0)
    obs = np.where(valid[:, None], obs, 0.0)
    valid3d = np.isfinite(joints).all(axis=1)
    valid3d[0] = False  # the root is the origin of both
    joints = np.where(valid3d[:, None], joints, 0.0)
    return obs, weights, joints, valid3d, pose, shape, translation


def levenberg_marquardt(evaluate, linearise, x, current, normal, max_iterations,
                        min_relative_gain=1e-2):
    """Run at most ``max_iterations`` damped Gauss-Newton steps from ``x``.

    ``evaluate(x)`` returns an object with the ``cost`` at ``x`` (inf where ``x`` is
    infeasible); ``linearise(evaluation)`` returns the Gauss-Newton Hessian H and half the
    gradient g there; ``current`` and ``normal`` = (H, g) are both at ``x``. A candidate step
    is judged by its cost alone; it is linearised only when the iterations go on from it.
    The loop stops (converged) after a step that lowers the cost by less than
    ``min_relative_gain`` of it.

    Returns (x, current, normal, normal_at_x, iterations, converged): ``current`` is the
    evaluation at the returned ``x``; ``normal`` is at the last linearised iterate, which is
    ``x`` itself (``normal_at_x`` True) unless the last accepted step converged: then it is
    the iterate before ``x`` (one step that lowered the cost by less than
    ``min_relative_gain``), and a caller that goes on iterating from ``x`` linearises
    ``current`` first.
    """
    lam = 1e-4
    converged = False
    iterations = 0
    hess, grad = normal
    normal_at_x = True
    for iterations in range(1, max_iterations + 1):
        cost = current.cost
        step = damped_step(hess, grad, lam, 1e-9, ridge=1e-12)
        if step is None:
            lam *= 10.0
            continue
        candidate = x + step
        new = evaluate(candidate)
        if math.isfinite(new.cost) and new.cost <= cost:
            gain = cost - new.cost
            x, current, normal_at_x = candidate, new, False
            lam = max(lam * 0.3, 1e-7)
            if gain <= min_relative_gain * max(cost, 1e-12) or np.abs(step).max() < 1e-7:
                converged = True
                break
            hess, grad = linearise(current)
            normal_at_x = True
        else:
            lam *= 10.0
    return x, current, (hess, grad), normal_at_x, iterations, converged


def check_depth(translation_m, max_depth_m, what):
    """Raise TailorError (reason 'too_far') when the root lies beyond ``max_depth_m``."""
    if not translation_m[2] <= max_depth_m:
        message = '%s is %.3g m deep, beyond %.3g m' % (what, translation_m[2], max_depth_m)
        raise TailorError(message, reason='too_far')


@dataclass(frozen=True, eq=False)
class TailorResult:
    """Result of :meth:`HandTailor.refine` (camera optical frame, metres, raw-image pixels).

    Attributes:
        pose_aa: (J, 3) refined pose, native parametrisation (``model.forward(pose_aa,
            shape, side)`` gives the hand; bone 0 is the orientation in the camera frame).
        shape: (S,) refined shape coefficients (the hand's size included).
        translation_m: (3,) root (wrist) position.
        keypoints_px: (21, 2) the refined model keypoints projected.
        joints_m: (21, 3) the refined model keypoints.
        reprojection_error_before_px: mean 2D error of the network's initial mesh (inf when
            that mesh is behind the camera).
        reprojection_error_after_px: mean 2D error after refinement.
        hand_length_m: the track's hand length (wrist crease to middle fingertip), metres.
        hand_length_sigma_m: its standard deviation (prior, network and metric evidence).
        position_covariance_m2: (3, 3) covariance of ``translation_m`` (fit, hand length
            and the camera mode's uncertainty; :mod:`hand_mesh_ros.core.fitting.uncertainty`).
        iterations: Levenberg-Marquardt iterations run (candidate steps tried, accepted or
            not; both halves of a young track's fit).
        converged: the last iteration met the convergence test (its accepted step lowered
            the cost by less than ``min_relative_gain`` or was negligible); False when the
            budget ran out.
        mode: the :class:`CameraMode` of the projection used.
        temporal: whether the track's temporal terms were used.

    """

    pose_aa: np.ndarray
    shape: np.ndarray
    translation_m: np.ndarray
    keypoints_px: np.ndarray
    joints_m: np.ndarray
    reprojection_error_before_px: float
    reprojection_error_after_px: float
    hand_length_m: float
    hand_length_sigma_m: float
    position_covariance_m2: np.ndarray
    iterations: int
    converged: bool
    mode: CameraMode
    temporal: bool
