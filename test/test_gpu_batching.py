"""Eight hands through the batch path, with the engine-profile logic TensorRT gets.

The sessions every backend makes enforce ``max_batch`` (the TensorRT profile maximum), so
ONNX Runtime on the CPU batches exactly as TensorRT would: the pipeline sizes the mesh
network's profile from ``detection.max_hands`` and the palm detector's at 1, and the tracker
splits a larger batch at the session's maximum.
"""

import dataclasses

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.inference import check_tensorrt_available
from hand_mesh_ros.inference import create_session
from hand_mesh_ros.inference.onnxruntime_backend import gpu_provider_options
from hand_mesh_ros.inference.tensorrt_build import profile_shapes
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.paths import models_dir


@pytest.fixture(scope='module')
def eight_hands():
    """``hands.jpg`` (two hands) tiled 2 x 2: eight real hands in one RGB frame."""
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    return np.concatenate([np.concatenate([rgb, rgb], axis=1)] * 2, axis=0)


def _config(max_hands):
    config = PipelineConfig()
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, backend='onnxruntime'),
        detection=dataclasses.replace(config.detection, max_hands=max_hands,
                                      detect_interval=1))


def _record_batches(session):
    """Wrap ``session.run`` to record the batch size of every call."""
    batches = []
    run = session.run

    def recording_run(feeds):
        batches.append(int(next(iter(feeds.values())).shape[0]))
        return run(feeds)

    session.run = recording_run
    return batches


def _track(pipeline, rgb, frames=3):
    result = None
    for index in range(frames):
        result = pipeline.process(Frame(rgb=rgb, stamp_ns=index * 40_000_000))
    return result


def test_eight_hands_in_one_batch(eight_hands):
    """max_hands 8: profiles 1 (palm) and 8 (mesh); the 8 tracked hands go as one batch."""
    pipeline = HandMeshPipeline(_config(8))
    assert pipeline.palm_session.max_batch == 1
    assert pipeline.mesh_session.max_batch == 8
    assert pipeline.tracker.landmarker.max_batch == 8
    batches = _record_batches(pipeline.mesh_session)
    result = _track(pipeline, eight_hands)
    assert len(result.hands) == 8
    assert batches[-1] == 8
    assert max(batches) == 8
    assert all(np.isfinite(hand.joints_m).all() for hand in result.hands)
    # The profile TensorRT would get for this session, from the same function.
    shape = pipeline.mesh_session.input_specs['input_1'][0]
    assert profile_shapes('input_1', shape, pipeline.mesh_session.max_batch) == (
        (1, 224, 224, 3), (2, 224, 224, 3), (8, 224, 224, 3))
    providers, options = gpu_provider_options(
        'tensorrt', input_shapes={'input_1': shape}, fp16=True, max_batch=8,
        engine_cache_dir='/tmp/e', workspace_mb=64)
    assert providers[0] == 'TensorrtExecutionProvider'
    assert options[0]['trt_profile_max_shapes'] == 'input_1:8x224x224x3'


def test_smaller_profile_splits_the_batch_with_the_same_result(eight_hands):
    """A mesh profile of 3 (e.g. an engine built for 3 hands): batches 3+3+2, same hands."""
    full = HandMeshPipeline(_config(8))
    reference = _track(full, eight_hands)
    root = models_dir()
    kwargs = {'backend': 'onnxruntime', 'num_threads': 2, 'log': None}
    sessions = (create_session(root / 'palm_detection_full.onnx', max_batch=1, **kwargs),
                create_session(root / 'hand_mesh_full.onnx', max_batch=3, **kwargs))
    split = HandMeshPipeline(_config(8), sessions=sessions)
    batches = _record_batches(split.mesh_session)
    result = _track(split, eight_hands)
    assert len(result.hands) == 8
    assert batches[-3:] == [3, 3, 2]
    got = sorted(tuple(np.round(h.observed_keypoints_px[0], 1)) for h in result.hands)
    want = sorted(tuple(np.round(h.observed_keypoints_px[0], 1)) for h in reference.hands)
    np.testing.assert_allclose(got, want, atol=0.5)


def test_session_enforces_its_profile_maximum(eight_hands):
    """Without the tracker's split, a batch over the profile is one clear error."""
    session = create_session(models_dir() / 'hand_mesh_full.onnx', backend='onnxruntime',
                             max_batch=4, log=lambda *_: None)
    crops = np.zeros((5, 224, 224, 3), np.float32)
    with pytest.raises(Exception, match='batch 5 exceeds the profile maximum 4'):
        session.run({'input_1': crops})


def _tensorrt_reason():
    ok, reason = check_tensorrt_available()
    return ok, f'TensorRT backend cannot run here: {reason}'


@pytest.mark.gpu
@pytest.mark.skipif(not _tensorrt_reason()[0], reason=_tensorrt_reason()[1])
def test_eight_hands_on_tensorrt_match_onnxruntime(eight_hands, tmp_path):
    """Where a GPU exists: 8 hands in one TensorRT batch give ONNX Runtime's keypoints."""
    config = _config(8)
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, backend='tensorrt', fp16=False))
    gpu = HandMeshPipeline(config)
    assert gpu.backend_name == 'tensorrt' and gpu.mesh_session.max_batch == 8
    batches = _record_batches(gpu.mesh_session)
    result = _track(gpu, eight_hands)
    reference = _track(HandMeshPipeline(_config(8)), eight_hands)
    assert len(result.hands) == 8 and batches[-1] == 8
    got = sorted(tuple(np.round(h.observed_keypoints_px[0], 1)) for h in result.hands)
    want = sorted(tuple(np.round(h.observed_keypoints_px[0], 1)) for h in reference.hands)
    np.testing.assert_allclose(got, want, atol=2.0)
