"""One home per fact: topology, sides, position modes, the nominal camera and its fallback."""

import ast
from dataclasses import replace
from pathlib import Path
import re
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


#: Names of single keypoints and keypoint counts: defined only by the topology.
_KEYPOINT_NAME = re.compile(r'^(WRIST|NUM_KEYPOINTS|NUM_LANDMARKS|KEYPOINT_PARENTS|'
                            r'(THUMB|INDEX|MIDDLE|RING|PINKY)_(CMC|MCP|PIP|DIP|IP|TIP))$')


def _int_literal(node):
    """Return the int of a literal (``-1`` included), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _int_literal(node.operand)
        return None if value is None else -value
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _int_sequences(tree):
    """Yield (line, tuple of ints) for every tuple or list literal made of ints only."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and node.elts:
            values = [_int_literal(elt) for elt in node.elts]
            if None not in values:
                yield node.lineno, tuple(values)


def topology_redefinitions(source):
    """Return 'line: what' for each place of ``source`` that spells out the keypoint topology.

    Caught: a literal parent table (with or without the wrist's -1), a literal finger chain
    (with or without the wrist in front), and a module-level keypoint index or count such as
    ``WRIST = 0`` or ``MIDDLE_MCP = 9``.
    """
    tree = ast.parse(source)
    parents = topology.KEYPOINT_PARENTS
    chains = set(topology.FINGER_CHAINS) | {(topology.WRIST,) + c
                                            for c in topology.FINGER_CHAINS}
    found = []
    for line, values in _int_sequences(tree):
        if values in (parents, parents[1:]):
            found.append('%d: parent table %s' % (line, values))
        elif values in chains:
            found.append('%d: finger chain %s' % (line, values))
    for node in tree.body:
        if isinstance(node, ast.Assign) and _int_literal(node.value) is not None:
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            found += ['%d: keypoint index %s' % (node.lineno, name) for name in names
                      if _KEYPOINT_NAME.match(name)]
    return found


def test_the_redefinition_check_catches_spelled_out_topology():
    spelled = ('PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, '
               '18, 19)\nMIDDLE_MCP = 9\nNUM_LANDMARKS = 21\n'
               "DIGITS = {'index': (5, 6, 7, 8)}\nCHAIN = [0, 9, 10, 11, 12]\n")
    assert len(topology_redefinitions(spelled)) == 5
    imported = ('from hand_mesh_ros.core.hand.topology import FINGER_CHAINS, MIDDLE_MCP\n'
                'CHAIN = (0,) + FINGER_CHAINS[2]\nPALM = (0, 9)\nSHAPE = (1, 2, 3)\n')
    assert topology_redefinitions(imported) == []


def test_only_topology_spells_out_the_keypoint_topology():
    package = Path(__file__).resolve().parents[1] / 'hand_mesh_ros'
    home = package / 'core' / 'hand' / 'topology.py'
    offenders = ['%s:%s' % (path.relative_to(package), where)
                 for path in sorted(package.rglob('*.py')) if path != home
                 for where in topology_redefinitions(path.read_text())]
    assert not offenders, 'import these from core/hand/topology.py: %s' % offenders


def test_users_of_the_topology_and_the_hand_size_import_them():
    from hand_mesh_ros.core.fitting import plausibility
    from hand_mesh_ros.core.hand import anatomy, hand_size
    from hand_mesh_ros.core.tracking import hand_landmarks
    assert plausibility.KEYPOINT_PARENTS is topology.KEYPOINT_PARENTS
    assert plausibility.SIZE_KEYPOINTS is hand_size.PALM_CHAIN
    assert hand_size.HAND_LENGTH_CHAIN[:2] == hand_size.PALM_CHAIN == (0, 9)
    assert hand_size.HAND_LENGTH_CHAIN == (0, 9, 10, 11, 12)
    assert tuple(anatomy.DIGIT_KEYPOINTS.values()) == topology.FINGER_CHAINS
    assert hand_landmarks.ROI_LANDMARKS == (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
    assert (hand_landmarks.WRIST, hand_landmarks.MIDDLE_MCP) == (0, 9)
    mean_m, sd_m = hand_size.population_hand_length_prior_m()
    assert hand_size.population_length_rel_spread() == pytest.approx(sd_m / mean_m)
    assert 0.055 < sd_m / mean_m < 0.062
    straight = np.zeros((21, 3))
    straight[[9, 10, 11, 12], 1] = [0.09, 0.135, 0.16, 0.185]
    straight[10, 0] = 0.03    # a bent PIP lengthens the chain, not the straight distance
    assert hand_size.hand_length_m(straight) == pytest.approx(
        0.09 + np.hypot(0.045, 0.03) + np.hypot(0.025, 0.03) + 0.025)


def test_level_names_map_to_logging_levels_in_one_place(caplog):
    import logging
    from hand_mesh_ros.inference.base import make_log
    from hand_mesh_ros.log_levels import python_log_level
    assert [python_log_level(name) for name in ('debug', 'INFO', 'warn', 'warning', 'error',
                                                'fatal', 'chatty')] == [
        logging.DEBUG, logging.INFO, logging.WARNING, logging.WARNING, logging.ERROR,
        logging.CRITICAL, logging.INFO]
    log = make_log()
    with caplog.at_level(logging.DEBUG, logger='hand_mesh_ros.inference'):
        for name in ('warn', 'error', 'debug'):
            log(name, 'at ' + name)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, 'at warn'), (logging.ERROR, 'at error'), (logging.DEBUG, 'at debug')]
