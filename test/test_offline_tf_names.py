"""``hand-mesh process`` names TF frames as hand_mesh_node does, stable for a track's life.

Both run the same scripted FrameResults (hands of the real hand model): two right hands, then
the first is lost while the second goes on, then a new right hand and a left hand appear. A
name must not move to another track while its own track goes on, offline as in the node.
"""

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from rclpy.serialization import deserialize_message  # noqa: E402,I100
from test_node_process import harness, synthetic_hand  # noqa: E402,F401
from tf2_msgs.msg import TFMessage  # noqa: E402

from hand_mesh_ros.core.types import FrameResult  # noqa: E402
from hand_mesh_ros.ros.bag_io import read_bag  # noqa: E402
from hand_mesh_ros.tools.process import process  # noqa: E402

#: (track id, side) of the hands of each frame.
SCRIPT = ([(5, 'right'), (7, 'right')],
          [(7, 'right')],
          [(7, 'right'), (9, 'right'), (2, 'left')],
          [(9, 'right'), (7, 'right')])


class ScriptedPipeline:
    """Return the hands of SCRIPT in call order (whatever the image)."""

    __test__ = False
    backend_name = 'test-data'

    def __init__(self, config, log=None, delay_s=0.0):
        self.config = config
        self.calls = 0

    def camera_for(self, frame):
        return frame.camera, 'assumed_fov' if frame.camera is None else frame.camera.mode.value

    def process(self, frame):
        hands = [synthetic_hand(track_id, side) for track_id, side in SCRIPT[self.calls]]
        self.calls += 1
        return FrameResult(stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
                           image_size=(frame.rgb.shape[1], frame.rgb.shape[0]), hands=hands,
                           position_mode='full_intrinsics')

    def update_config(self, config):
        self.config = config

    def close(self):
        pass


def hand_prefixes(tf_message):
    """Return the hand frame prefixes of a TFMessage in hand order (child '<prefix>_wrist')."""
    return [t.child_frame_id[:-len('_wrist')] for t in tf_message.transforms
            if t.child_frame_id.endswith('_wrist')]


def offline_tf(tmp_path):
    """Run ``hand-mesh process`` over an image folder; return its /tf messages in order."""
    folder = tmp_path / 'images'
    folder.mkdir()
    for index in range(len(SCRIPT)):
        cv2.imwrite(str(folder / ('%03d.png' % index)), np.full((240, 320, 3), 90, np.uint8))
    rc = process.main([str(folder), '--out', str(tmp_path / 'out'), '--no-video',
                       '--no-progress'], pipeline_factory=lambda config: ScriptedPipeline(config))
    assert rc == 0
    return [deserialize_message(cdr, TFMessage)
            for _, _, _, cdr in read_bag(tmp_path / 'out' / 'results', ['/tf'])]


def test_offline_tf_names_are_stable_and_equal_the_nodes(tmp_path, harness):  # noqa: F811
    offline = [hand_prefixes(msg) for msg in offline_tf(tmp_path)]
    assert offline == [['hand_right', 'hand_right2'], ['hand_right2'],
                       ['hand_right2', 'hand_right', 'hand_left'],
                       ['hand_right', 'hand_right2']]
    names_by_track = {}
    for hands, prefixes in zip(SCRIPT, offline):
        for (track_id, _), prefix in zip(hands, prefixes):
            names_by_track.setdefault(track_id, set()).add(prefix)
    assert names_by_track == {5: {'hand_right'}, 7: {'hand_right2'}, 9: {'hand_right'},
                              2: {'hand_left'}}
    h = harness(pipeline_class=ScriptedPipeline)
    assert h.wait(lambda: h.node.count_subscribers('/tf') > 0)
    for index in range(len(SCRIPT)):
        h.send(10 ** 9 + index)
        assert h.wait(lambda: len(h.got['tf']) == index + 1)
    assert [hand_prefixes(msg) for msg in h.got['tf']] == offline
