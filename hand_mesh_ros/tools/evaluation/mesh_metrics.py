"""Mesh and keypoint error metrics (numpy): the standard hand-reconstruction definitions.

- MPJPE / MPVPE: :func:`mean_point_error` of joints / vertices (B, P, 3), metres.
- PA-MPJPE / PA-MPVPE: :func:`pa_mean_point_error`, after aligning each prediction to its
  target with the best similarity transform (rotation, uniform scale, translation; Umeyama
  1991, :func:`procrustes_align`).
- F@5 mm / F@15 mm: :func:`f_score` of two point sets (harmonic mean of precision and recall
  at a distance threshold; Knapitsch et al. 2017, as used by FreiHAND).
- 2D PCK / AUC: :func:`pck` and :func:`pck_auc` of keypoints in pixels.
- Acc (MobRecon): :func:`joint_acceleration` per frame and :func:`mean_acceleration`, the
  mean norm of the second difference of joint positions over frames and joints
  (length/frame^2 in the input's unit).

Unless stated otherwise inputs are in metres and results per sample (B,) in metres.
"""

import numpy as np


def mean_point_error(pred, target):
    """Return the mean Euclidean distance per sample (B,) between (B, P, 3) point sets."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    return np.linalg.norm(pred - target, axis=-1).mean(-1)


def procrustes_align(pred, target):
    """Return ``pred`` (B, P, 3) moved by the similarity transform that best fits ``target``."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_p = pred.mean(1, keepdims=True)
    mu_t = target.mean(1, keepdims=True)
    p = pred - mu_p
    t = target - mu_t
    cov = np.einsum('bpi,bpj->bij', t, p)
    u, sing, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones_like(sing)
    fix[:, -1] = d
    rot = u @ (fix[:, :, None] * vt)
    var_p = (p * p).sum((1, 2))
    scale = (sing * fix).sum(1) / np.maximum(var_p, 1e-30)
    return scale[:, None, None] * np.einsum('bij,bpj->bpi', rot, p) + mu_t


def pa_mean_point_error(pred, target):
    """Return the Procrustes-aligned mean point error per sample (B,)."""
    return mean_point_error(procrustes_align(pred, target), target)


def summarize_mm(errors_m):
    """Return {'mean', 'median', 'p90'} in millimetres (rounded to 0.01) of errors (B,)."""
    errors_mm = 1000.0 * np.asarray(errors_m, dtype=np.float64)
    return {'mean': round(float(errors_mm.mean()), 2),
            'median': round(float(np.median(errors_mm)), 2),
            'p90': round(float(np.percentile(errors_mm, 90)), 2)}


def f_score(pred, target, threshold):
    """Return (F, precision, recall) of two point sets at a distance threshold.

    Args:
        pred: (P, 3) predicted points (e.g. mesh vertices).
        target: (Q, 3) reference points, same unit as ``threshold``.
        threshold: distance (e.g. 0.005 for F@5 mm with metres).

    Precision is the fraction of ``pred`` points within ``threshold`` of their nearest
    ``target`` point, recall the fraction of ``target`` points within ``threshold`` of their
    nearest ``pred`` point; F = 2 P R / (P + R) (0 when both are 0).
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    dist = np.linalg.norm(pred[:, None, :] - target[None, :, :], axis=-1)
    precision = float(np.mean(dist.min(axis=1) <= threshold))
    recall = float(np.mean(dist.min(axis=0) <= threshold))
    total = precision + recall
    return (2.0 * precision * recall / total if total > 0.0 else 0.0), precision, recall


def pck(pred_px, target_px, thresholds_px):
    """Return the fraction of keypoints within each threshold (len(thresholds),).

    ``pred_px`` and ``target_px`` are (..., K, 2) keypoints in pixels; every keypoint of
    every sample counts once.
    """
    errors = np.linalg.norm(np.asarray(pred_px, dtype=np.float64)
                            - np.asarray(target_px, dtype=np.float64), axis=-1).ravel()
    thresholds = np.asarray(thresholds_px, dtype=np.float64)
    return (errors[None, :] <= thresholds[:, None]).mean(axis=1)


def pck_auc(pred_px, target_px, max_threshold_px, steps=101):
    """Return the normalised area (in [0, 1]) under the PCK curve from 0 to the threshold.

    The curve is sampled at ``steps`` evenly spaced thresholds and integrated with the
    trapezoid rule, then divided by ``max_threshold_px``.
    """
    thresholds = np.linspace(0.0, float(max_threshold_px), int(steps))
    curve = pck(pred_px, target_px, thresholds)
    area = np.sum(0.5 * (curve[1:] + curve[:-1]) * np.diff(thresholds))
    return float(area / float(max_threshold_px))


def joint_acceleration(joints_seq):
    """Return (T - 2,) the mean over joints of |x[t + 1] - 2 x[t] + x[t - 1]| per frame.

    ``joints_seq`` is (T, N, 3) or (T, 3) for one track at a constant frame rate; the result
    is in the input's unit per frame^2.
    """
    seq = np.asarray(joints_seq, dtype=np.float64)
    if seq.ndim == 2:
        seq = seq[:, None, :]
    accel = seq[2:] - 2.0 * seq[1:-1] + seq[:-2]
    return np.linalg.norm(accel, axis=-1).mean(axis=1)


def mean_acceleration(joints_seq):
    """Return MobRecon's Acc: the mean of :func:`joint_acceleration` over frames."""
    return float(np.mean(joint_acceleration(joints_seq)))
