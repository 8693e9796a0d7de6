"""Property test of HandMeshPipeline.process with random images and camera models.

For any input the pipeline either returns a valid FrameResult (every number finite, every hand
with the documented shapes, the input image untouched) or raises the project's own
HandMeshError. Camera parameters that CameraModel refuses raise CameraModelError (a
HandMeshError) before the pipeline is called; that is an accepted outcome too.
"""

import math

import cv2
from hypothesis import event, given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.types import Frame, FrameResult, POSITION_MODES, SIDES
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.video_frames import iter_frames

PIPELINES = {}
HAND_FRAMES = []

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def pipeline(mode):
    """Return the module's pipeline for a camera fallback mode (models loaded once)."""
    if mode not in PIPELINES:
        config = PipelineConfig().with_values({'camera.fallback_mode': mode})
        PIPELINES[mode] = HandMeshPipeline(config)
    return PIPELINES[mode]


@pytest.fixture(scope='module', autouse=True)
def _close_pipelines():
    yield
    for built in PIPELINES.values():
        built.close()
    PIPELINES.clear()


def hand_frames():
    """Return a few frames of the sample video (a real hand) as (H, W, 3) uint8 RGB."""
    if not HAND_FRAMES:
        video = iter_frames(data_dir() / 'asl_hand.25fps.mp4', max_frames=200)
        frames = [rgb for i, _, rgb in video if i % 50 == 0]
        HAND_FRAMES.extend(frames)
    return HAND_FRAMES


# ---------------------------------------------------------------------- strategies
WEIRD_FLOATS = st.sampled_from([0.0, -1.0, 1e-9, 1e-3, 1.0, 1e6, 1e12, -1e6, float('nan'),
                                float('inf'), float('-inf')])


def mostly(strategy, weird=WEIRD_FLOATS):
    """Return a strategy drawing from ``strategy`` 9 times in 10, else a weird value."""
    return st.integers(0, 9).flatmap(lambda i: weird if i == 0 else strategy)


SIZES = mostly(st.integers(min_value=32, max_value=300), st.integers(1, 31))
FOCALS = mostly(st.floats(min_value=20.0, max_value=3000.0))
COEFFS = mostly(st.floats(min_value=-0.3, max_value=0.3))
DISTORTION = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4, '': 0,
              'fisheye_unknown': 4}


@st.composite
def images(draw):
    """Draw (H, W, 3) uint8 images and, sometimes, arrays that are not such images."""
    height, width = draw(SIZES), draw(SIZES)
    seed = draw(st.integers(min_value=0, max_value=2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    valid = ['hand'] * 9 + ['noise', 'noise', 'flat', 'gradient']
    invalid = ['float', 'gray', 'rgba', 'uint16', 'bool', '1d', '4d', 'list']
    kind = draw(st.sampled_from(valid if draw(st.integers(0, 3)) else invalid))
    if kind == 'hand':
        frame = hand_frames()[draw(st.integers(0, len(hand_frames()) - 1))]
        rgb = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        noise = draw(st.integers(0, 60))
        if noise:
            rgb = np.clip(rgb + rng.normal(0, noise, rgb.shape), 0, 255).astype(np.uint8)
        return rgb
    if kind == 'noise':
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == 'flat':
        return np.full((height, width, 3), draw(st.integers(0, 255)), np.uint8)
    if kind == 'gradient':
        ramp = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
        return np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
    if kind == 'float':
        image = rng.random((height, width, 3)).astype(np.float32)
        image[0, 0, 0] = draw(st.sampled_from([np.nan, np.inf, 0.5]))
        return image
    if kind == 'gray':
        return rng.integers(0, 256, (height, width), dtype=np.uint8)
    if kind == 'rgba':
        return rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if kind == 'uint16':
        return rng.integers(0, 65536, (height, width, 3), dtype=np.uint16)
    if kind == 'bool':
        return rng.random((height, width, 3)) > 0.5
    if kind == '1d':
        return rng.integers(0, 256, (height * width * 3,), dtype=np.uint8)
    if kind == '4d':
        return rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    return [[0, 0, 0]] * width


@st.composite
def cameras(draw, width, height):
    """Draw a CameraModel (or None) for an image; some parameters are invalid."""
    if draw(st.booleans()):
        return None
    if draw(st.integers(0, 4)):
        cal_width, cal_height = width, height
    else:
        cal_width, cal_height = draw(st.integers(-5, 400)), draw(st.integers(-5, 400))
    model = draw(st.sampled_from(sorted(DISTORTION)))
    count = DISTORTION[model]
    if draw(st.integers(0, 9)) == 0:
        count = draw(st.integers(0, 14))                  # a wrong number of coefficients
    d = [draw(COEFFS) for _ in range(count)]
    fx = draw(FOCALS)
    fy = fx if draw(st.booleans()) else draw(FOCALS)
    cx = draw(mostly(st.floats(-50.0, 350.0)))
    cy = draw(mostly(st.floats(-50.0, 350.0)))
    skew = draw(st.sampled_from([0.0] * 8 + [1.5, float('nan')]))
    k = [fx, skew, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = [0.0] * 12
    binning = draw(st.sampled_from([0, 0, 0, 1, 2]))
    # Raises CameraModelError (a HandMeshError) for invalid fields.
    return CameraModel.from_camera_info_fields(cal_width, cal_height, model, d, k, r, p,
                                               binning, binning)


# ---------------------------------------------------------------------- checks
def assert_valid(result, rgb, camera, built):
    height, width = rgb.shape[:2]
    assert isinstance(result, FrameResult)
    assert result.image_size == (width, height)
    assert result.position_mode in POSITION_MODES
    if camera is not None:
        assert result.position_mode == camera.mode.value
    else:
        assert result.position_mode == built.config.camera.fallback_mode
    assert all(isinstance(n, int) and n > 0 for n in result.rejected.values())
    assert all(math.isfinite(v) and v >= 0.0 for v in result.timings_ms.values())
    model = built.hand_model
    bones = len(model.bone_names)
    for hand in result.hands:
        assert hand.is_finite()
        assert hand.side in SIDES and hand.position_mode == result.position_mode
        assert 0.0 <= hand.score <= 1.0 and 0.0 <= hand.side_score <= 1.0
        assert hand.keypoints_px.shape == (21, 2)
        assert hand.observed_keypoints_px.shape == (21, 2)
        assert hand.joints_m.shape == (21, 3)
        assert hand.vertices_m.shape == model.template_vertices_m.shape
        assert hand.faces.shape == model.faces.shape and hand.faces.dtype == np.int32
        assert hand.bone_transforms.shape == (bones, 4, 4)
        assert hand.bone_parents.shape == (bones,) and len(hand.bone_names) == bones
        assert hand.pose_coefficients.shape == (bones, 3)
        assert hand.shape_coefficients.ndim == 1
        assert hand.hand_length_m > 0.0 and hand.reprojection_error_px >= 0.0
        assert 0.0 <= hand.confidence <= 1.0
        assert np.all(np.linalg.eigvalsh(hand.position_covariance_m2) > 0.0)
        np.testing.assert_allclose(hand.bone_transforms[:, 3], [[0.0, 0.0, 0.0, 1.0]] * bones)
        assert hand.joints_m[0, 2] > 0.0     # in front of the camera


def check_one(mode, rgb, draw_camera, stamp_ns):
    built = pipeline(mode)
    shape = getattr(rgb, 'shape', (1, 1))
    try:
        camera = draw_camera(shape[1] if len(shape) > 1 else 1, shape[0])
        before = np.array(rgb, copy=True) if isinstance(rgb, np.ndarray) else None
        fallback = None if camera is not None else built.config.camera.fallback_mode
        result = built.process(Frame(rgb=rgb, stamp_ns=stamp_ns, frame_id='cam',
                                     camera=camera, position_mode=fallback))
    except HandMeshError as exc:
        return exc
    if before is not None:
        np.testing.assert_array_equal(rgb, before)          # the input is never modified
    assert_valid(result, rgb, camera, built)
    return result


def describe(outcome):
    """Return a label of an outcome for hypothesis' statistics."""
    if isinstance(outcome, HandMeshError):
        return 'raised %s' % type(outcome).__name__
    return '%d hand(s), rejected %s' % (len(outcome.hands), sorted(outcome.rejected))


@FUZZ
@given(data=st.data(), rgb=images(),
       stamp_ns=st.integers(min_value=0, max_value=2 ** 62),
       mode=st.sampled_from(['assumed_fov', 'weak_perspective']))
def test_process_returns_a_valid_result_or_raises_hand_mesh_error(data, rgb, stamp_ns, mode):
    outcome = check_one(mode, rgb, lambda w, h: data.draw(cameras(w, h)), stamp_ns)
    event(describe(outcome))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.integers(-2_000_000_000, 500_000_000),
                                st.sampled_from([None, 300.0, 900.0, 1e-3, 1e7])),
                      min_size=2, max_size=8))
def test_a_tracked_hand_survives_odd_stamps_and_changing_cameras(steps):
    # Frames of a real hand in sequence: time jumps backwards and forwards, the focal length
    # changes or becomes absurd. Tracking and the tailor's temporal state must stay finite.
    stamp = 10 ** 12
    height, width = 270, 155
    for index, step_ns, focal_px in steps:
        rgb = cv2.resize(hand_frames()[index], (width, height), interpolation=cv2.INTER_AREA)
        stamp = max(0, stamp + step_ns)

        def camera(w, h, focal_px=focal_px):
            if focal_px is None:
                return None
            k = [focal_px, 0.0, w / 2.0, 0.0, focal_px, h / 2.0, 0.0, 0.0, 1.0]
            return CameraModel.from_camera_info_fields(w, h, 'plumb_bob', [0.0] * 5, k,
                                                       [0.0] * 9, [0.0] * 12)
        event(describe(check_one('assumed_fov', rgb, camera, stamp)))


def test_the_fuzzed_path_really_finds_hands():
    # Without this, the shape checks above could pass by never seeing a hand.
    rgb = cv2.resize(hand_frames()[0], (155, 270), interpolation=cv2.INTER_AREA)
    result = check_one('assumed_fov', rgb, lambda w, h: None, 5 * 10 ** 9)
    assert isinstance(result, FrameResult) and len(result.hands) == 1
    assert result.position_mode == 'assumed_fov'
