"""Hands as collision objects: shapes, padding, and the ADD / MOVE / REMOVE decisions."""

import numpy as np
import pytest

from hand_mesh_ros.ros.collision_objects import (
    ADD, CollisionHand, CollisionObjectTracker, CYLINDER, hand_primitives, MOVE, padding_m,
    REMOVE, SPHERE)
from hand_mesh_ros.tools.bench.fusion_scenes import hand_joints_m

MS = 1_000_000


def hand(name='hand_right', sigma_m=0.01, wrist=(0.0, 0.0, 0.5), joints=None):
    t = np.eye(4)
    t[:3, 3] = wrist
    joints = hand_joints_m('right') if joints is None else joints
    return CollisionHand(name=name, frame_id='cam', stamp_ns=0, t_frame_wrist=t,
                         joints_m=joints + np.asarray(wrist),
                         covariance_m2=np.diag([sigma_m ** 2, sigma_m ** 2, 4 * sigma_m ** 2]))


def test_padding_is_k_sigma_of_the_worst_axis_and_grows_with_the_covariance():
    assert padding_m(np.diag([1e-4, 1e-4, 4e-4]), 2.0) == pytest.approx(0.04)
    paddings = [padding_m(np.eye(3) * s ** 2, 3.0) for s in (0.005, 0.01, 0.02)]
    assert paddings == pytest.approx([0.015, 0.03, 0.06])
    radii = []
    for sigma in (0.005, 0.02):
        (op, _, _, primitives), = CollisionObjectTracker(padding_sigma=2.0).update(
            [hand(sigma_m=sigma)], 0)
        assert op == ADD
        radii.append(np.array([dims[-1] for _, dims, _ in primitives]))
    # The worst axis has 2 sigma: padding 2 * 2 * sigma, so every radius grows by 60 mm.
    assert np.allclose(radii[1] - radii[0], 2.0 * 2.0 * (0.02 - 0.005))


@pytest.mark.parametrize('shape, spheres, cylinders',
                         [('capsules', 21, 20), ('spheres', 41, 0)])
def test_shapes_cover_every_joint_and_bone(shape, spheres, cylinders):
    joints = hand_joints_m('right')
    primitives = hand_primitives(joints, 0.0, shape)
    kinds = [kind for kind, _, _ in primitives]
    assert kinds.count(SPHERE) == spheres and kinds.count(CYLINDER) == cylinders
    for kind, dims, pose in primitives:
        if kind == CYLINDER:   # each cylinder's ends sit on two joints
            height = dims[0]
            ends = [pose[:3, 3] + s * 0.5 * height * pose[:3, 2] for s in (-1, 1)]
            for end in ends:
                assert np.min(np.linalg.norm(joints - end, axis=1)) < 1e-9


def test_add_once_then_move_at_the_rate_then_remove_after_the_loss_timeout():
    tracker = CollisionObjectTracker(update_rate_hz=10.0, lost_timeout_s=0.5)
    ops = []
    for t_ms in range(0, 1000, 20):   # 50 Hz for 1 s, the hand moving slowly
        ops += [(t_ms, op) for op, _, _, _ in tracker.update(
            [hand(wrist=(0.001 * t_ms / 20, 0.0, 0.5))], t_ms * MS)]
    assert ops[0] == (0, ADD)
    assert [op for _, op in ops[1:]] == [MOVE] * (len(ops) - 1)
    assert len(ops) == 10      # 10 Hz: one message per 100 ms
    assert tracker.expire(1400 * MS) == []                  # seen at 980 ms: still live
    (op, _, name, frame), = tracker.expire(1500 * MS)
    assert (op, name, frame) == (REMOVE, 'hand_right', 'cam')
    assert tracker.live_names == [] and tracker.expire(3000 * MS) == []


def test_a_changed_shape_is_sent_again_with_add_and_close_removes_everything():
    tracker = CollisionObjectTracker(update_rate_hz=10.0)
    tracker.update([hand(), hand('hand_left')], 0)
    curled = hand_joints_m('right').copy()
    curled[8] = curled[5]          # the index tip folded onto its MCP: 6+ cm of change
    ops = tracker.update([hand(joints=curled), hand('hand_left')], 200 * MS)
    assert [(op, name) for op, _, name, _ in ops] == [(ADD, 'hand_right'), (MOVE, 'hand_left')]
    assert [(op, name) for op, _, name, _ in tracker.close()] == [
        (REMOVE, 'hand_left'), (REMOVE, 'hand_right')]


def test_the_padding_parameter_scales_the_margin():
    for k, expected in ((0.0, 0.0), (3.0, 0.06)):
        (_, _, _, primitives), = CollisionObjectTracker(padding_sigma=k).update(
            [hand(sigma_m=0.01)], 0)
        base = hand_primitives(hand_joints_m('right'), 0.0)
        grown = [a[1][-1] - b[1][-1] for a, b in zip(primitives, base)]
        assert np.allclose(grown, expected)


def test_unknown_shape_is_refused():
    with pytest.raises(ValueError):
        CollisionObjectTracker(shape='mesh')
