"""Train the learned lifting head on synthetic hands (CPU, seeded) and save its weights.

Usage::

    python -m hand_mesh_ros.model_building.train_lifting [--steps 4000] [--seed 0] \
        [--threads 2] [--out models/lifting_head.npz]

Each step samples a fresh batch from :mod:`hand_mesh_ros.model_building.synthetic_hands`
(poses with joint limits and finger synergies, uniform global rotations, Gaussian shapes),
changes the keypoint definitions of half of the inputs
(:func:`~hand_mesh_ros.model_building.synthetic_hands.perturb_keypoint_definitions`: fixed
3 mm offsets per keypoint, thumb CMC moved up to half-way towards the wrist, as MediaPipe
places it; ``--no-definition-noise`` turns this off), makes 80 % of the inputs noisy
(per-hand Gaussian level 2-10 mm per coordinate, 5 % outlier keypoints of 15 mm), and
minimises, in millimetres, the keypoint error + the error of 400
fixed vertices + 20 x the Frobenius error of the local rotations + 0.5 x the shape error
(coefficients), all against the clean ground truth. Adam, cosine learning-rate decay.
The weights go to an ``.npz`` (float32, names as in the torch state dict).
"""

import argparse
import json
from pathlib import Path
import sys
import time

import numpy as np

from hand_mesh_ros.model_building import synthetic_hands
from hand_mesh_ros.paths import models_dir

HEAD_FILE = 'lifting_head.npz'
HIDDEN = 256
DEPTH = 3


def build_liftings(model, head_path=None):
    """Return (analytic, learned) torch modules for numpy ``model``; load head weights if given."""
    import torch
    from hand_mesh_ros.model_building import lifting_torch as lt
    hand = lt.TorchHandModel(model)
    analytic = lt.AnalyticLifting(hand, model)
    learned = lt.LearnedLifting(analytic, hidden=HIDDEN, depth=DEPTH)
    if head_path is not None:
        with np.load(head_path) as data:
            state = {k[len('mlp.'):]: torch.tensor(data[k]) for k in data.files
                     if k.startswith('mlp.')}
        learned.mlp.load_state_dict(state)
    return analytic, learned


def _skin_subset(hand, posed_rot, posed_pos, shape, index, tip_rows):
    """Return vertices (B, len(index), 3) and keypoints (B, 21, 3), skinning only ``index``.

    ``tip_rows`` (21 * K,) gives the rows of ``index`` holding the keypoint regressor's
    vertices; the result equals :meth:`TorchHandModel.skin` on those vertices.
    """
    batch = shape.shape[0]
    rest_v = (hand.rest_vertices[index]
              + (shape @ hand.vertex_basis).reshape(batch, -1, 3)[:, index])
    rest_j = hand.rest_joints + (shape @ hand.joint_basis).reshape(batch, -1, 3)
    skin_rot = posed_rot @ hand.rest_rot.transpose(-1, -2)
    skin_trans = posed_pos - (skin_rot @ rest_j[..., None])[..., 0]
    flat = torch_cat([skin_rot, skin_trans[..., None]], -1).reshape(batch, -1, 12)
    blended = (hand.skin_weights[index] @ flat).reshape(batch, -1, 3, 4)
    verts = (blended[..., :3] @ rest_v[..., None])[..., 0] + blended[..., 3]
    tips = (verts[:, tip_rows].reshape(batch, 21, -1, 3) * hand.kp_vertex_weight).sum(2)
    keypoints = (hand.kp_on_joint * posed_pos[:, hand.kp_joint]
                 + (1.0 - hand.kp_on_joint) * tips)
    return verts, keypoints


def torch_cat(tensors, dim):
    """Return ``torch.cat(tensors, dim)`` (torch imported lazily)."""
    import torch
    return torch.cat(tensors, dim)


def _batch(hand, rng, n, limits, shape_names, subset, definitions):
    """Return one training batch (tensors): noisy input, gt keypoints, vertices, rots, shape."""
    import torch
    from hand_mesh_ros.model_building import lifting_torch as lt
    pose = synthetic_hands.sample_poses(rng, n, *limits)
    shape = synthetic_hands.sample_shapes(rng, n, shape_names)
    rot = lt.axis_angle_to_matrix(torch.tensor(pose, dtype=torch.float32))
    shape_t = torch.tensor(shape, dtype=torch.float32)
    with torch.no_grad():
        _, rest_j, _ = hand.shaped_rest(shape_t)
        posed_rot, posed_pos = hand.fk(rot, rest_j)
        verts, kps = _skin_subset(hand, posed_rot, posed_pos, shape_t, *subset)
    clean = kps.numpy().astype(np.float64)
    if definitions:
        clean_in = synthetic_hands.perturb_keypoint_definitions(
            rng, clean, rot[:, 0].numpy().astype(np.float64))
    else:
        clean_in = clean
    noisy = synthetic_hands.add_keypoint_noise(rng, clean_in, sigma_range_m=(0.002, 0.010))
    keep_clean = rng.uniform(size=(n, 1, 1)) < 0.2
    inputs = np.where(keep_clean, clean_in, noisy)
    inputs = inputs - inputs[:, :1]
    return (torch.tensor(inputs, dtype=torch.float32), kps, verts, rot, shape_t)


def train(model, steps, seed, batch=256, lr=1e-3, log_every=250, definitions=True):
    """Train the head for ``model``; return (learned module, log list)."""
    import torch
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    analytic, learned = build_liftings(model)
    hand = analytic.hand
    limits = (model.joint_limits_min_rad, model.joint_limits_max_rad)
    loss_vertices = np.random.default_rng(1234).choice(hand.n_vertices, 400, replace=False)
    index = np.union1d(loss_vertices, hand.kp_vertex.numpy())
    subset = (torch.tensor(index), torch.tensor(np.searchsorted(index, hand.kp_vertex.numpy())))
    opt = torch.optim.Adam(learned.mlp.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    log = []
    start = time.monotonic()
    for step in range(steps):
        inputs, kps, verts, rot, shape = _batch(hand, rng, batch, limits, model.shape_names,
                                                subset, definitions)
        local, shape_p, posed_rot, posed_pos = learned(inputs)
        pred_v, pred_k = _skin_subset(hand, posed_rot, posed_pos, shape_p, *subset)
        kp_mm = 1000 * torch.linalg.norm(pred_k - kps, dim=-1).mean()
        v_mm = 1000 * torch.linalg.norm(pred_v - verts, dim=-1).mean()
        rot_err = torch.linalg.norm((local - rot).reshape(batch, -1, 9), dim=-1).mean()
        shape_err = (shape_p - shape).abs().mean()
        loss = kp_mm + v_mm + 20.0 * rot_err + 0.5 * shape_err
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            entry = {'step': step, 'loss': round(loss.item(), 3), 'kp_mm': round(kp_mm.item(), 3),
                     'v_mm': round(v_mm.item(), 3), 'rot': round(rot_err.item(), 4),
                     'seconds': round(time.monotonic() - start, 1)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
    return learned, log


def save_head(learned, path):
    """Save the MLP weights of ``learned`` to ``path`` (.npz, float32)."""
    arrays = {'mlp.' + k: v.detach().numpy().astype(np.float32)
              for k, v in learned.mlp.state_dict().items()}
    np.savez_compressed(path, **arrays)


def main(argv=None):
    """Train and save the head; print the training log (JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=4000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--no-definition-noise', action='store_true',
                        help='train without perturb_keypoint_definitions (first head)')
    parser.add_argument('--out', type=Path, default=models_dir() / HEAD_FILE)
    args = parser.parse_args(argv)
    import torch
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    learned, _ = train(load_hand_model(), args.steps, args.seed,
                       definitions=not args.no_definition_noise)
    save_head(learned, args.out)
    seconds = time.monotonic() - start
    print('saved %s (%d bytes) after %.0f s' % (args.out, args.out.stat().st_size, seconds))
    return 0


if __name__ == '__main__':
    sys.exit(main())
