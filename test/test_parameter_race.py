"""Concurrent set_parameters on a real hand_mesh_node: no change is lost on its way to the worker.

rclpy runs ``set_parameters`` in whichever thread calls it, without a lock; the node's worker
thread takes the new pipeline configuration before its next frame. Threads here change
different parameters at the same moment (a barrier, and a tiny thread switch interval so the
interpreter interleaves them often) while a feeder keeps the worker busy with real Image
messages; every change must arrive in the configuration the pipeline ends up with.
"""

import random
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')

from rclpy.parameter import Parameter  # noqa: E402,I100

from hand_mesh_ros.core.types import FrameResult  # noqa: E402
from hand_mesh_ros.ros.image_conversion import rgb_to_image  # noqa: E402
from hand_mesh_ros.ros.node import HandMeshNode  # noqa: E402

#: Dynamic pipeline parameters, each changed by its own thread.
NAMES = ('tailor.w_reprojection', 'tailor.w_joints3d', 'tailor.w_pose_prior',
         'tailor.w_temporal_pose', 'tailor.w_temporal_translation', 'tailor.w_limits',
         'tailor.w_twist', 'tailor.w_shape')
ROUNDS = 25


class RecordingPipeline:
    """Pipeline that finds no hand and records every configuration handed to it."""

    backend_name = 'recording'

    def __init__(self, config, log=None):
        self.config = config
        self.frames = 0
        self.updates = 0

    def process(self, frame):
        self.frames += 1
        return FrameResult(stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
                           image_size=(frame.rgb.shape[1], frame.rgb.shape[0]))

    def update_config(self, config):
        self.updates += 1
        self.config = config

    def close(self):
        pass


def _applied(pipeline, name):
    return pipeline.config.as_flat_dict()[name]


def test_concurrent_set_parameters_all_reach_the_pipeline():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=random.randint(120, 220))
    made = []

    def factory(config, log=None):
        made.append(RecordingPipeline(config, log))
        return made[-1]

    node = HandMeshNode(pipeline_factory=factory, context=context)
    pipeline = made[0]
    image = rgb_to_image(np.zeros((96, 128, 3), np.uint8))
    image.header.frame_id = 'cam_optical'
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            node._worker.submit((image, time.monotonic_ns(), time.time_ns()))
            time.sleep(0.0005)

    feeder = threading.Thread(target=feed, daemon=True)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    feeder.start()
    try:
        for round_index in range(ROUNDS):
            wanted = {name: 0.5 + round_index + 0.01 * i for i, name in enumerate(NAMES)}
            barrier = threading.Barrier(len(NAMES))
            results = {}

            def change(name):
                barrier.wait()
                results[name] = node.set_parameters([Parameter(name, value=wanted[name])])[0]

            threads = [threading.Thread(target=change, args=(n,)) for n in NAMES]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10.0)
            assert all(results[n].successful for n in NAMES), results
            assert {n: node.get_parameter(n).value for n in NAMES} == wanted
            end = time.monotonic() + 5.0
            while time.monotonic() < end:
                if all(_applied(pipeline, n) == wanted[n] for n in NAMES):
                    break
                time.sleep(0.005)
            lost = {n: (_applied(pipeline, n), wanted[n]) for n in NAMES
                    if _applied(pipeline, n) != wanted[n]}
            assert not lost, 'round %d: changes lost (applied, set): %s' % (round_index, lost)
        assert pipeline.frames > ROUNDS and pipeline.updates >= ROUNDS
    finally:
        sys.setswitchinterval(switch_interval)
        stop.set()
        feeder.join(5.0)
        node.close()
        node.destroy_node()
        rclpy.shutdown(context=context)
