"""Hand frame prefixes from the namespace, and the TF clashes the node reports."""

import pytest

from hand_mesh_ros.ros import frame_names as fn

geometry_msgs = pytest.importorskip('geometry_msgs.msg', reason='ROS 2 messages missing')


@pytest.mark.parametrize('parameter, namespace, prefix', [
    ('', '/', 'hand'), ('', '/cam_a', 'cam_a_hand'), ('', '/robot/left/', 'robot_left_hand'),
    ('wrist_cam', '/cam_a', 'wrist_cam'), ('hand', '/cam_a', 'hand')])
def test_prefix_comes_from_the_namespace_unless_set(parameter, namespace, prefix):
    assert fn.tf_prefix(parameter, namespace) == prefix


def test_fusion_prefix_derives_from_the_namespace_with_its_own_base():
    assert fn.tf_prefix('', '/', base='fused') == 'fused'
    assert fn.tf_prefix('', '/robot', base='fused') == 'robot_fused'
    assert fn.tf_prefix('cell', '/robot', base='fused') == 'cell'


def test_output_builder_names_tf_frames_after_its_namespace():
    from test_node_process import synthetic_hand
    from hand_mesh_ros.ros import messages
    from hand_mesh_ros.ros.outputs import OutputBuilder
    header = messages.make_header(1, 'cam_a_color_optical_frame')
    builder = OutputBuilder(tf_prefix='', namespace='/cam_a')
    assert builder.tf_prefix == 'cam_a_hand'
    children = {t.child_frame_id for t in
                builder.tf_message(header, [synthetic_hand(1, 'right')]).transforms}
    assert 'cam_a_hand_right_wrist' in children
    builder.set_tf_prefix('wrist_cam')
    assert builder.tf_prefix == 'wrist_cam'
    builder.set_tf_prefix('')
    assert builder.tf_prefix == 'cam_a_hand'
    assert OutputBuilder().tf_prefix == 'hand'   # hand-mesh process: the root namespace


def test_every_published_frame_name_is_a_hand_frame_of_its_prefix():
    from test_node_process import synthetic_hand
    from hand_mesh_ros.ros import messages, tf_frames
    header = messages.make_header(1, 'cam_a_color_optical_frame')
    hands = [synthetic_hand(1, 'right'), synthetic_hand(2, 'left'), synthetic_hand(3, 'left')]
    msg = tf_frames.tf_message(hands, header, 'cam_a_hand')
    children = {t.child_frame_id for t in msg.transforms}
    assert {'cam_a_hand_right_wrist', 'cam_a_hand_left2_index_tip'} <= children
    assert all(fn.is_hand_frame(c, 'cam_a_hand') for c in children)
    assert not any(fn.is_hand_frame(c, 'hand') for c in children)
    for other in ('camera_left_optical_frame', 'cam_a_color_optical_frame', 'base_link',
                  'hand_right', 'right_wrist'):
        assert not fn.is_hand_frame(other), other


def _transform(parent, child):
    msg = geometry_msgs.TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    return msg


class _Clock:
    now_s = 0.0

    def __call__(self):
        return self.now_s


def test_clashes_are_reported_and_forgotten_when_over():
    clock = _Clock()
    monitor = fn.FrameClashMonitor(memory_s=10.0, clock=clock)
    monitor.observe([_transform('cam_b', 'cam_a_hand_right_wrist')])   # no frames yet
    monitor.note_frames('cam_a_optical', 'cam_a_hand')
    own = [_transform('cam_a_optical', 'cam_a_hand_right_root'),
           _transform('cam_a_hand_right_root', 'cam_a_hand_right_wrist'),
           _transform('base_link', 'cam_a_optical'),
           _transform('cam_b_optical', 'cam_b_hand_right_root')]
    monitor.observe(own)
    assert monitor.problems() == []
    monitor.observe([_transform('cam_b_optical', 'cam_a_hand_right_root')])
    assert monitor.problems() == [
        "hand frame 'cam_a_hand_right_root' is also published under 'cam_b_optical' (another "
        "node uses tf prefix 'cam_a_hand'): give each camera its own namespace or "
        'output.tf_prefix']
    clock.now_s = 10.5
    assert monitor.problems() == []


def test_camera_frame_that_is_a_hand_frame_is_a_clash():
    monitor = fn.FrameClashMonitor()
    monitor.note_frames('hand_right_wrist', 'cam_a_hand')
    monitor.observe([_transform('camera_optical_frame', 'hand_right_root'),
                     _transform('hand_right_root', 'hand_right_wrist')])
    problems = monitor.problems()
    assert len(problems) == 1 and problems[0].startswith(
        "camera frame 'hand_right_wrist' is a hand frame of another node (published under "
        "'hand_right_root')")
    loop = fn.FrameClashMonitor()
    loop.note_frames('cam_a_hand_left_wrist', 'cam_a_hand')
    assert 'the TF tree would loop' in loop.problems()[0]


def test_diagnostics_carry_the_clash_as_an_error():
    from diagnostic_msgs.msg import DiagnosticStatus
    from hand_mesh_ros.ros import diagnostics, messages
    snapshot = diagnostics.NodeStats().snapshot()
    header = messages.make_header(1, 'cam_a_optical')
    clash = "hand frame 'cam_a_hand_right_root' is also published under 'cam_b_optical'"
    status = diagnostics.diagnostic_array(snapshot, header, 'cpu',
                                          frame_clashes=[clash]).status[0]
    assert status.level == DiagnosticStatus.ERROR
    assert status.message.startswith('TF frame clash: ' + clash)
    assert {k.key: k.value for k in status.values}['tf_frame_clash.0'] == clash
    assert diagnostics.diagnostic_array(snapshot, header, 'cpu').status[0].level != (
        DiagnosticStatus.ERROR)
