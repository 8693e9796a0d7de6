"""One home per fact: topology, sides, position modes, the nominal camera and its fallback."""

from dataclasses import replace
from pathlib import Path
import subprocess
import sys
from xml.etree import ElementTree

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import (CameraMode, CameraModel, DEFAULT_HFOV_DEG,
                                              fallback_camera, nominal_focal_px,
                                              nominal_pinhole)
from hand_mesh_ros.core.camera.decision import frame_camera_decision
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.errors import CameraModelError
from hand_mesh_ros.core.fitting.tailor_terms import Projector
from hand_mesh_ros.core.hand import topology
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.types import Frame, POSITION_MODES
from hand_mesh_ros.paths import data_dir, models_dir

#: MediaPipe Hands' HAND_CONNECTIONS as its documentation lists them (palm, then fingers).
MEDIAPIPE_CONNECTIONS = {(0, 1), (0, 5), (9, 13), (13, 17), (5, 9), (0, 17), (1, 2), (2, 3),
                         (3, 4), (5, 6), (6, 7), (7, 8), (9, 10), (10, 11), (11, 12),
                         (13, 14), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20)}


def test_topology_is_mediapipes_tree():
    assert len(topology.KEYPOINT_NAMES) == topology.NUM_KEYPOINTS == 21
    assert set(topology.HAND_CONNECTIONS) == MEDIAPIPE_CONNECTIONS
    assert len(topology.HAND_CONNECTIONS) == len(MEDIAPIPE_CONNECTIONS)
    parents = topology.KEYPOINT_PARENTS
    assert parents[0] == -1 and all(0 <= parents[k] < k for k in range(1, 21))
    for name, chain in zip(topology.FINGER_NAMES, topology.FINGER_CHAINS):
        assert parents[chain[0]] == topology.WRIST
        assert [parents[k] for k in chain[1:]] == list(chain[:-1])
        assert [topology.KEYPOINT_NAMES[k].split('_')[0] for k in chain] == [name] * 4
    assert dict(topology.FINGERTIPS) == {'thumb': 4, 'index': 8, 'middle': 12, 'ring': 16,
                                         'pinky': 20}
    assert all(topology.KEYPOINT_NAMES[k] == f + '_mcp' for f, k in
               zip(topology.FINGER_NAMES[1:], topology.PALM_MCPS))


def test_the_model_files_keypoints_are_the_topologys():
    model = load_hand_model()
    names = np.load(models_dir() / 'hand_model_right.npz')['keypoint_names']
    assert tuple(str(n) for n in names) == topology.KEYPOINT_NAMES
    assert model.native_side == topology.SIDES[0]


def test_sides_and_position_modes_have_one_definition():
    from hand_mesh_ros.core.hand import hand_model, mano_loader
    from hand_mesh_ros.core import types
    assert types.SIDES is topology.SIDES and hand_model.SIDES is topology.SIDES
    assert mano_loader.SIDES is topology.SIDES
    assert POSITION_MODES == tuple(mode.value for mode in CameraMode) + ('depth_fused',)


def test_nominal_pinhole_is_the_assumed_fov_camera_and_the_weak_projector():
    focal, centre = nominal_pinhole((640, 480))
    camera = CameraModel.assumed_fov(640, 480)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (focal, focal, *centre)
    assert focal == pytest.approx(320.0 / np.tan(np.radians(DEFAULT_HFOV_DEG) / 2.0))
    weak = Projector(None, (640, 480))
    np.testing.assert_array_equal(weak.focal_px, [focal, focal])
    np.testing.assert_array_equal(weak.centre_px, centre)
    assert nominal_pinhole((1280, 480), 90.0)[0] == pytest.approx(640.0)
    for size, match in ((None, 'image_size'), ((0, 480), 'positive'), ((640, -1), 'positive')):
        with pytest.raises(CameraModelError, match=match):
            nominal_pinhole(size)
        with pytest.raises(CameraModelError, match=match):
            Projector(None, size)
    with pytest.raises(CameraModelError, match='hfov'):
        nominal_pinhole((640, 480), 180.0)


def test_fallback_camera_is_decided_in_one_place():
    camera, mode = fallback_camera(640, 480, 'assumed_fov', 70.0)
    assert mode is CameraMode.ASSUMED_FOV and camera.mode is CameraMode.ASSUMED_FOV
    assert camera.fx == pytest.approx(nominal_pinhole((640, 480), 70.0)[0])
    assert fallback_camera(640, 480, 'assumed_fov', 70.0)[0] is camera   # memoised
    assert fallback_camera(320, 240, 'assumed_fov', 70.0)[0].width == 320
    assert fallback_camera(640, 480, 'weak_perspective', 70.0) == (
        None, CameraMode.WEAK_PERSPECTIVE)
    with pytest.raises(ValueError, match='fallback_mode'):
        fallback_camera(640, 480, 'pinhole', 70.0)


def test_node_resolver_and_pipeline_agree_on_the_fallback():
    pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')
    from hand_mesh_ros.ros.camera_info import CameraResolver
    rgb = np.zeros((480, 640, 3), np.uint8)
    for mode, hfov in (('assumed_fov', 55.0), ('weak_perspective', 55.0),
                       ('assumed_fov', 75.0)):
        resolver = CameraResolver(fallback_mode=mode, assumed_hfov_deg=hfov)
        resolution = resolver.resolve(123, 640, 480)
        frame = Frame(rgb=rgb, stamp_ns=123, camera=resolution.camera,
                      position_mode=resolution.mode, assumed_hfov_deg=resolution.hfov_deg)
        decision = frame_camera_decision(640, 480, frame.camera, frame.position_mode,
                                         frame.assumed_hfov_deg)
        camera, pipeline_mode = decision.camera, decision.mode.value
        assert resolution.mode == pipeline_mode == mode
        assert resolution.camera is camera
        assert decision.focal_px(640) == pytest.approx(nominal_pinhole((640, 480), hfov)[0])
        if camera is not None:
            assert camera.fx == pytest.approx(nominal_pinhole((640, 480), hfov)[0])


def test_weak_perspective_uses_the_assumed_fov_everywhere():
    """Root recovery, the tailor's projector and the gates take the frame's assumed FOV."""
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    width = rgb.shape[1]
    pipeline = HandMeshPipeline(PipelineConfig())
    try:
        depth_m, gate_depth_m = {}, {}
        for hfov in (40.0, 90.0):
            pipeline.reset()
            result = pipeline.process(Frame(rgb=rgb, stamp_ns=0, position_mode='weak_perspective',
                                            assumed_hfov_deg=hfov))
            assert result.position_mode == 'weak_perspective'
            assert len(result.hands) == 2
            hands = sorted(result.hands, key=lambda hand: hand.observed_keypoints_px[0, 0])
            depth_m[hfov] = np.array([hand.joints_m[0, 2] for hand in hands])
            figures = sorted(result.gate_figures, key=lambda f: f['track_id'])
            gate_depth_m[hfov] = sorted(f['depth_m'] for f in figures)
            for hand in hands:   # the projector's nominal camera is the frame's
                assert hand.reprojection_error_px < 0.05 * np.ptp(
                    hand.observed_keypoints_px[:, 1])
        focal_ratio = nominal_focal_px(width, 40.0) / nominal_focal_px(width, 90.0)
        np.testing.assert_allclose(depth_m[40.0] / depth_m[90.0], focal_ratio, rtol=0.05)
        np.testing.assert_allclose(np.divide(gate_depth_m[40.0], gate_depth_m[90.0]),
                                   focal_ratio, rtol=0.05)
    finally:
        pipeline.close()


def test_a_new_tracker_continues_the_ids_of_the_one_it_replaces():
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    pipeline = HandMeshPipeline(PipelineConfig())
    try:
        first = pipeline.process(Frame(rgb=rgb, stamp_ns=0))
        ids = sorted(hand.track_id for hand in first.hands)
        assert len(ids) == 2
        old_tracker = pipeline.tracker
        assert old_tracker.next_track_id == ids[-1] + 1
        detection = replace(pipeline.config.detection, detect_interval=3)
        pipeline.update_config(replace(pipeline.config, detection=detection))
        assert pipeline.tracker is not old_tracker
        assert pipeline.tracker.next_track_id == old_tracker.next_track_id
        second = pipeline.process(Frame(rgb=rgb, stamp_ns=40_000_000))
        assert len(second.hands) == 2
        assert min(hand.track_id for hand in second.hands) > ids[-1]
        old_tracker.continue_ids_from(pipeline.tracker)   # never lowers an id
        assert old_tracker.next_track_id == pipeline.tracker.next_track_id
    finally:
        pipeline.close()


def test_the_version_is_written_once_in_package_xml():
    import hand_mesh_ros
    root = Path(__file__).resolve().parents[1]
    version = ElementTree.parse(root / 'package.xml').findtext('version').strip()
    assert hand_mesh_ros.__version__ == version
    out = subprocess.run([sys.executable, 'setup.py', '--version'], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == version
    for path in (root / 'setup.py', root / 'hand_mesh_ros' / '__init__.py'):
        assert "'%s'" % version not in path.read_text(), path


def test_the_public_core_api_is_annotated():
    import inspect
    import typing
    from hand_mesh_ros.core.camera import camera as camera_module
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    from hand_mesh_ros.core.fitting.tailor import HandTailor
    from hand_mesh_ros.core.types import FrameResult, HandEstimate
    functions = [camera_module.nominal_focal_px, camera_module.nominal_pinhole,
                 camera_module.fallback_camera.__wrapped__]
    for cls in (HandMeshPipeline, CameraModel, HandTailor, HandEstimate, FrameResult, Frame):
        for name, member in vars(cls).items():
            if name.startswith('_') and name != '__init__':
                continue
            member = getattr(member, '__func__', member)        # classmethods
            member = getattr(member, 'fget', member)            # properties
            if inspect.isfunction(member):
                functions.append(member)
        fields = typing.get_type_hints(cls)
        assert fields or not getattr(cls, '__dataclass_fields__', None), cls
    missing = []
    for function in functions:
        hints = typing.get_type_hints(function)
        params = [p for p in inspect.signature(function).parameters if p not in ('self', 'cls')]
        missing += ['%s(%s)' % (function.__qualname__, p) for p in params + ['return']
                    if p not in hints]
    assert not missing, 'not annotated: %s' % ', '.join(missing)
