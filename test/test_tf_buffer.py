"""The stand-in tf buffer answers like tf2's BufferCore (its documented lookup rules)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hand_mesh_ros.ros.tf_buffer import (
    create_transform_lookup, MAX_GRAPH_DEPTH, TransformError, TransformStore)

S = 1_000_000_000
IDENTITY_Q = (0.0, 0.0, 0.0, 1.0)


def quat_z(angle_rad):
    return tuple(Rotation.from_euler('z', angle_rad).as_quat())


def point(t, p):
    return (t @ np.append(p, 1.0))[:3]


def test_static_transform_holds_for_all_time_and_a_new_value_replaces_it():
    store = TransformStore()
    assert store.set_transform('world', 'cam', 5 * S, (1.0, 0.0, 0.0), IDENTITY_Q,
                               static=True) == ''
    for stamp in (0, 1, 5 * S, 1000 * S):
        assert np.allclose(point(store.lookup('world', 'cam', stamp), [0, 0, 0]), [1, 0, 0])
    store.set_transform('world', 'cam', 1 * S, (2.0, 0.0, 0.0), IDENTITY_Q, static=True)
    assert np.allclose(store.lookup('world', 'cam', 3 * S)[:3, 3], [2, 0, 0])


def test_dynamic_transform_interpolates_translation_linearly_and_rotation_by_slerp():
    store = TransformStore()
    store.set_transform('world', 'base', 1 * S, (0.0, 0.0, 0.0), quat_z(0.0))
    store.set_transform('world', 'base', 2 * S, (1.0, 2.0, 0.0), quat_z(np.pi / 2))
    t = store.lookup('world', 'base', 1 * S + S // 4)
    assert np.allclose(t[:3, 3], [0.25, 0.5, 0.0])
    assert np.allclose(Rotation.from_matrix(t[:3, :3]).as_euler('xyz'), [0, 0, np.pi / 8])
    # At a sample's stamp: that sample.
    assert np.allclose(store.lookup('world', 'base', 2 * S)[:3, 3], [1, 2, 0])


@pytest.mark.parametrize('stamp, word', [(S // 2, 'past'), (3 * S, 'future')])
def test_lookup_outside_the_data_is_an_extrapolation_error(stamp, word):
    store = TransformStore()
    store.set_transform('world', 'base', 1 * S, (0.0, 0.0, 0.0), IDENTITY_Q)
    store.set_transform('world', 'base', 2 * S, (1.0, 0.0, 0.0), IDENTITY_Q)
    with pytest.raises(TransformError) as info:
        store.lookup('world', 'base', stamp)
    assert info.value.kind == 'extrapolation' and word in str(info.value)


def test_one_dynamic_sample_answers_only_at_its_stamp_or_latest():
    store = TransformStore()
    store.set_transform('world', 'base', 1 * S, (1.0, 0.0, 0.0), IDENTITY_Q)
    assert np.allclose(store.lookup('world', 'base', 1 * S)[:3, 3], [1, 0, 0])
    assert np.allclose(store.lookup('world', 'base', 0)[:3, 3], [1, 0, 0])
    with pytest.raises(TransformError):
        store.lookup('world', 'base', 1 * S + 1)


def test_chains_compose_through_the_common_ancestor_both_ways():
    store = TransformStore()
    store.set_transform('world', 'base', 0, (1.0, 0.0, 0.0), quat_z(np.pi / 2), static=True)
    store.set_transform('base', 'cam', 0, (0.0, 0.5, 0.0), IDENTITY_Q, static=True)
    store.set_transform('world', 'table', 0, (0.0, 0.0, 0.7), IDENTITY_Q, static=True)
    t_world_cam = store.lookup('world', 'cam', 0)
    # cam origin: base (1, 0, 0) + Rz(90) (0, 0.5, 0) = (0.5, 0, 0).
    assert np.allclose(point(t_world_cam, [0, 0, 0]), [0.5, 0.0, 0.0])
    t_table_cam = store.lookup('table', 'cam', 0)
    assert np.allclose(point(t_table_cam, [0, 0, 0]), [0.5, 0.0, -0.7])
    assert np.allclose(store.lookup('cam', 'table', 0) @ t_table_cam, np.eye(4))


def test_stamp_zero_is_the_latest_time_every_frame_of_the_chain_has():
    store = TransformStore()
    for k in range(1, 4):
        store.set_transform('world', 'base', k * S, (float(k), 0.0, 0.0), IDENTITY_Q)
    for k in range(1, 3):
        store.set_transform('base', 'arm', k * S, (0.0, float(k), 0.0), IDENTITY_Q)
    # 'arm' ends at 2 s, so the latest common time is 2 s (not 3 s).
    assert np.allclose(store.lookup('world', 'arm', 0)[:3, 3], [2.0, 2.0, 0.0])


def test_a_frame_changing_parent_is_not_interpolated_across_the_change():
    store = TransformStore()
    store.set_transform('a', 'hand', 1 * S, (1.0, 0.0, 0.0), IDENTITY_Q)
    store.set_transform('b', 'hand', 2 * S, (2.0, 0.0, 0.0), IDENTITY_Q)
    store.set_transform('a', 'b', 0, (0.0, 0.0, 0.0), IDENTITY_Q, static=True)
    assert np.allclose(store.lookup('a', 'hand', 1 * S + S // 2)[:3, 3], [1.0, 0.0, 0.0])


def test_unknown_frames_disconnected_trees_and_loops_are_named_errors():
    store = TransformStore()
    store.set_transform('world', 'cam', 0, (0.0, 0.0, 0.0), IDENTITY_Q, static=True)
    store.set_transform('map', 'robot', 0, (0.0, 0.0, 0.0), IDENTITY_Q, static=True)
    store.set_transform('x', 'y', 0, (0.0, 0.0, 0.0), IDENTITY_Q, static=True)
    store.set_transform('y', 'x', 0, (0.0, 0.0, 0.0), IDENTITY_Q, static=True)
    for target, source, kind in (('world', 'nowhere', 'unknown_frame'),
                                 ('nowhere', 'nowhere', 'unknown_frame'),
                                 ('world', 'robot', 'connectivity'),
                                 ('world', 'x', 'loop')):
        with pytest.raises(TransformError) as info:
            store.lookup(target, source, 0)
        assert info.value.kind == kind, (target, source)
    assert MAX_GRAPH_DEPTH == 1000
    assert np.allclose(store.lookup('cam', 'cam', 0), np.eye(4))


def test_old_data_is_dropped_and_the_cache_keeps_cache_time():
    store = TransformStore(cache_time_s=2.0)
    for k in range(6):
        assert store.set_transform('world', 'base', k * S, (float(k), 0, 0), IDENTITY_Q) == ''
    with pytest.raises(TransformError):   # 5 s newest, 2 s cache: 2.5 s is gone
        store.lookup('world', 'base', 2 * S + S // 2)
    assert np.allclose(store.lookup('world', 'base', 3 * S + S // 2)[:3, 3], [3.5, 0, 0])
    assert store.set_transform('world', 'base', 1 * S, (0, 0, 0), IDENTITY_Q) == 'old_data'
    assert store.set_transform('world', 'base', 5 * S, (0, 0, 0), IDENTITY_Q) == \
        'repeated_data'


@pytest.mark.parametrize('parent, child, translation, quat, reason', [
    ('', 'cam', (0, 0, 0), IDENTITY_Q, 'empty_frame_id'),
    ('cam', 'cam', (0, 0, 0), IDENTITY_Q, 'self_transform'),
    ('world', 'cam', (np.nan, 0, 0), IDENTITY_Q, 'nan_input'),
    ('world', 'cam', (0, 0, 0), (0.0, 0.0, 0.0, 0.5), 'denormalized_quaternion'),
])
def test_bad_transforms_are_refused_with_tf2s_reasons(parent, child, translation, quat,
                                                      reason):
    store = TransformStore()
    assert store.set_transform(parent, child, 0, translation, quat) == reason
    assert not store.frame_exists('cam') or parent == 'cam'


def test_the_factory_gives_the_stand_in_where_tf2_ros_is_missing():
    rclpy = pytest.importorskip('rclpy')
    try:
        import tf2_ros  # noqa: F401
        expected = 'tf2_ros'
    except ImportError:
        expected = 'stand-in buffer (tf2_ros not importable)'
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('tf_lookup_factory', context=context)
        lookup = create_transform_lookup(node, cache_time_s=5.0)
        assert lookup.name == expected
        with pytest.raises(TransformError) as info:
            lookup.lookup('world', 'cam', 0)
        assert info.value.kind == 'unknown_frame'
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
