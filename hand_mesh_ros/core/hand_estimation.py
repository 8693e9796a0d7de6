"""One tracked hand to one HandEstimate: root recovery, tailor, hand model, gates, 2D refit.

Pure functions over explicit inputs; :class:`~hand_mesh_ros.core.pipeline.HandMeshPipeline`
calls them per hand with the frame's :class:`~hand_mesh_ros.core.camera.decision.
CameraDecision` and the hand's :class:`~hand_mesh_ros.core.track.Track`.
"""

from dataclasses import replace
import math
import time
from typing import NamedTuple, Optional

import numpy as np

from hand_mesh_ros.core.errors import HandMeshError, TailorError
from hand_mesh_ros.core.fitting.error_model import evidence_covariance_m2, HandEvidence
from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.plausibility import (check_plausibility, joints3d_trust,
                                                     mirrored_network_error_px)
from hand_mesh_ros.core.fitting.refit_2d import refit_from_2d
from hand_mesh_ros.core.fitting.root_recovery import recover_root
from hand_mesh_ros.core.fitting.tailor_terms import Projector, TailorResult
from hand_mesh_ros.core.fitting.uncertainty import hand_confidence, position_covariance_m2
from hand_mesh_ros.core.types import HandEstimate, SHAPE_NETWORK, SHAPE_REFIT_2D

#: The tailor stops a fit that runs beyond this many times the gates' far depth ('too_far');
#: between the two the gate drops it ('implausible_depth').
TAILOR_DEPTH_FACTOR = 2.0
#: Gate failures of the network's 3D after which the hand is refitted from its 2D alone.
REFIT_REASONS = ('inconsistent_3d_2d', 'implausible_reprojection', 'too_far')


class HandOutcome(NamedTuple):
    """One hand's estimate (or None), its rejection reason (or None), gate figures, timings.

    ``evidence`` is the :class:`~hand_mesh_ros.core.fitting.error_model.HandEvidence` that
    widened a published estimate's covariance (None for a refused hand).
    """

    estimate: Optional[HandEstimate]
    reason: Optional[str]
    figures: Optional[dict]
    root_ms: float
    tailor_ms: float
    evidence: Optional[HandEvidence] = None


def estimate_hand(network, track, decision, image_size, timestamp_s, *, tailor, hand_model,
                  config):
    """Return (HandEstimate, root ms, tailor ms, network error px) for one NetworkHand.

    ``network_error_px`` is the mean 2D error of the network's own 3D at the root recovered
    from it, for the gates. Raises HandMeshError (with a ``reason``) when a stage refuses.
    """
    start = time.perf_counter()
    # Root recovery runs every frame: its residual tells whether the network's 3D can
    # explain its own 2D keypoints (a gate). A new (or re-found) track starts from its
    # robust solution; a tracked hand starts from the tailor's motion prediction, and
    # plain least squares gives the same residual to ~1 %.
    predicted = (tailor.predicted_translation(track, timestamp_s)
                 if config.tailor.enabled else None)
    root = recover_root(network.keypoints_px, network.joints_rel_m, decision.camera,
                        image_size=image_size, hfov_deg=decision.hfov_deg,
                        robust='huber' if predicted is None else None)
    network_error_px = float(np.mean(root.residuals_px[root.valid_mask]))
    root_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    if config.tailor.enabled:
        trust = joints3d_trust(network_error_px, network.joints_rel_m, root.translation_m,
                               decision.focal_px(image_size[0]),
                               config.gates.max_network_error)
        refined = tailor.refine(
            track, network.keypoints_px, network.joints_rel_m, network.pose_aa, network.shape,
            root.translation_m if predicted is None else predicted, decision.camera,
            timestamp_s, network.side, image_size=image_size, hfov_deg=decision.hfov_deg,
            joints3d_trust=trust, max_depth_m=TAILOR_DEPTH_FACTOR * config.gates.max_depth_m)
    else:
        refined = unrefined_fit(network, root.translation_m, decision, image_size, track,
                                tailor=tailor, hand_model=hand_model)
    tailor_ms = (time.perf_counter() - start) * 1e3
    estimate = hand_estimate(network, refined, decision, hand_model, model_name(config))
    return estimate, root_ms, tailor_ms, network_error_px


def model_name(config):
    """Return the HandEstimate.hand_model name of ``config.model``: 'mano' or 'anny'."""
    return 'mano' if config.model.hand_model == 'mano' else 'anny'


def hand_estimate(network, refined, decision, hand_model, hand_model_name,
                  shape_source=SHAPE_NETWORK):
    """Return the HandEstimate of a fit posed with the model.

    ``refined`` is a TailorResult or a :class:`~hand_mesh_ros.core.fitting.refit_2d.Refit`
    (pose, shape, translation, projected keypoints, hand length, covariance).
    """
    out = hand_model.forward(refined.pose_aa, refined.shape, side=network.side)
    translation = np.asarray(refined.translation_m, dtype=np.float64)
    bones = np.array(out.bone_frames, dtype=np.float64)
    bones[:, :3, 3] += translation
    keypoints_m = out.keypoints + translation
    keypoints_px = (decision.camera.project(keypoints_m) if decision.camera is not None
                    else np.asarray(refined.keypoints_px, dtype=np.float64))
    error_px = mean_reprojection_error_px(keypoints_px, network.keypoints_px)
    return HandEstimate(
        track_id=network.track_id, side=network.side, side_score=network.side_score,
        score=network.presence, keypoints_px=keypoints_px,
        observed_keypoints_px=np.asarray(network.keypoints_px),
        joints_m=out.joint_centres + translation, vertices_m=out.vertices + translation,
        faces=np.asarray(out.faces, dtype=np.int32), bone_transforms=bones,
        bone_parents=np.asarray(hand_model.parents), bone_names=hand_model.bone_names,
        pose_coefficients=np.asarray(refined.pose_aa, dtype=np.float64),
        shape_coefficients=np.asarray(refined.shape, dtype=np.float64),
        hand_model=hand_model_name, hand_length_m=float(refined.hand_length_m),
        reprojection_error_px=error_px, position_mode=decision.mode.value,
        confidence=hand_confidence(network.presence, refined.position_covariance_m2),
        position_covariance_m2=np.asarray(refined.position_covariance_m2),
        keypoints_m=keypoints_m, shape_source=shape_source)


def unrefined_fit(network, translation_m, decision, image_size, track, *, tailor, hand_model):
    """Return the network's hand at the recovered root as a TailorResult (tailor disabled)."""
    joints = (hand_model.forward(network.pose_aa, network.shape, side=network.side).keypoints
              + translation_m)
    keypoints_px = None
    if decision.camera is None:
        keypoints_px = Projector(None, image_size, decision.hfov_deg).project(
            joints, translation_m)[0]
        if keypoints_px is None:
            raise TailorError('the hand is behind the camera')
    # No fit to take a covariance from: the hand-length prior and the camera mode only.
    length_mean_m, length_sd_m = tailor.hand_length_m(track)
    covariance = position_covariance_m2(translation_m, np.zeros((3, 3)), length_mean_m,
                                        length_sd_m, decision.mode)
    return TailorResult(
        pose_aa=np.asarray(network.pose_aa, dtype=np.float64), shape=network.shape,
        translation_m=np.asarray(translation_m, dtype=np.float64),
        keypoints_px=keypoints_px, joints_m=joints, reprojection_error_before_px=math.nan,
        reprojection_error_after_px=math.nan,
        hand_length_m=tailor.size.length_m(network.shape), hand_length_sigma_m=length_sd_m,
        position_covariance_m2=covariance, iterations=0, converged=True, mode=decision.mode,
        temporal=False)


def gate_hand(estimate, network, network_error_px, track, decision, image_size, timestamp_s,
              *, gates, reference_joints_m, mirrored_error_px=None):
    """Return (reason or None, figures) of the plausibility gates for one estimate.

    The gates judge the landmark-convention 3D (the points the network and the mean hand
    are in), not the published anatomical joint centres. A hand refitted from its 2D
    (``mirrored_error_px``: the network's mean 2D error against the mirrored 2D keypoints)
    is held to ``gates.max_refit_error``.
    """
    refit = mirrored_error_px is not None
    reason, figures = check_plausibility(
        joints_m=estimate.keypoints_m, keypoints_px=estimate.keypoints_px,
        observed_px=estimate.observed_keypoints_px,
        network_joints_rel_m=network.joints_rel_m, network_error_px=network_error_px,
        reference_joints_m=reference_joints_m, focal_px=decision.focal_px(image_size[0]),
        speed_mps=track.speed_mps(estimate.joints_m[0], timestamp_s, gates.max_gap_s),
        min_depth_m=gates.min_depth_m, max_depth_m=gates.max_depth_m,
        min_bone_ratio=gates.min_bone_ratio, max_bone_ratio=gates.max_bone_ratio,
        max_network_error=gates.max_network_error,
        max_reprojection_error=(gates.max_refit_error if refit
                                else gates.max_reprojection_error),
        max_speed_mps=gates.max_speed_mps, mirrored_network_error_px=mirrored_error_px)
    figures.update(track_id=int(network.track_id), rejected=reason,
                   shape_source=estimate.shape_source)
    return reason, figures


def checked_hand(network, track, decision, image_size, timestamp_s, *, tailor, hand_model,
                 config, reference_joints_m):
    """Return the :class:`HandOutcome` of one hand: estimated, checked finite, gated."""
    try:
        estimate, root_ms, tailor_ms, network_error_px = estimate_hand(
            network, track, decision, image_size, timestamp_s, tailor=tailor,
            hand_model=hand_model, config=config)
    except HandMeshError as exc:
        return HandOutcome(None, getattr(exc, 'reason', type(exc).__name__), None, 0.0, 0.0)
    if not estimate.is_finite():
        return HandOutcome(None, 'non_finite', None, root_ms, tailor_ms)
    reason, figures = gate_hand(estimate, network, network_error_px, track, decision,
                                image_size, timestamp_s, gates=config.gates,
                                reference_joints_m=reference_joints_m)
    if reason is not None:
        return HandOutcome(None, reason, figures, root_ms, tailor_ms)
    evidence = HandEvidence.from_gate_figures(figures)
    return HandOutcome(widened_by_evidence(estimate, evidence), None, figures, root_ms,
                       tailor_ms, evidence)


def widened_by_evidence(estimate, evidence):
    """Return ``estimate`` with the covariance its evidence adds, and its confidence again."""
    covariance = estimate.position_covariance_m2 + evidence_covariance_m2(
        estimate.bone_transforms[0, :3, 3], evidence)
    return replace(estimate, position_covariance_m2=covariance,
                   confidence=hand_confidence(estimate.score, covariance))


def refit_hand(network, track, decision, image_size, timestamp_s, reason, *, tailor,
               hand_model, config, reference_joints_m):
    """Return the :class:`HandOutcome` of ``network`` refitted from its 2D keypoints alone.

    For a hand whose network 3D failed with ``reason``: the refit is published when it
    passes the gates (its covariance widened by its evidence, as in :func:`checked_hand`);
    else (no plausible refit) ``reason`` stands. The refit's time counts as tailor time.
    """
    start = time.perf_counter()
    length_m, length_sd_m = tailor.hand_length_m(track)
    try:
        refit = refit_from_2d(
            tailor, network.side, network.keypoints_px, decision.camera,
            network_pose_aa=network.pose_aa, hand_length_m=length_m,
            hand_length_sd_m=length_sd_m, image_size=image_size, hfov_deg=decision.hfov_deg,
            max_depth_m=config.gates.max_depth_m)
        estimate = None if refit is None else hand_estimate(
            network, refit, decision, hand_model, model_name(config), SHAPE_REFIT_2D)
    except HandMeshError:
        estimate = None
    if estimate is None or not estimate.is_finite():
        return HandOutcome(None, reason, None, 0.0, (time.perf_counter() - start) * 1e3)
    mirrored_px = mirrored_network_error_px(network.keypoints_px, network.joints_rel_m,
                                            decision.camera, image_size, decision.hfov_deg)
    refit_reason, figures = gate_hand(
        estimate, network, None, track, decision, image_size, timestamp_s,
        gates=config.gates, reference_joints_m=reference_joints_m,
        mirrored_error_px=mirrored_px)
    refit_ms = (time.perf_counter() - start) * 1e3
    if refit_reason is not None:
        return HandOutcome(None, reason, figures, 0.0, refit_ms)
    evidence = HandEvidence.from_gate_figures(figures)
    return HandOutcome(widened_by_evidence(estimate, evidence), None, figures, 0.0, refit_ms,
                       evidence)
