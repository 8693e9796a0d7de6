"""Tests for ``hand-mesh eval keypoints`` (short runs on the real sample data)."""

import json

import numpy as np
import pytest

from hand_mesh_ros.paths import data_dir, models_dir
from hand_mesh_ros.tools.evaluation import eval_keypoints


def test_match_hands_hungarian():
    a, b = np.zeros((21, 2)), np.full((21, 2), 100.0)
    pairs = eval_keypoints.match_hands([b + 1.0, a + 2.0], [a, b])
    assert sorted(pairs) == [(0, 1, pytest.approx(np.sqrt(2))),
                             (1, 0, pytest.approx(2 * np.sqrt(2)))]
    assert eval_keypoints.match_hands([], [a]) == []


@pytest.fixture()
def have_models():
    if not (models_dir() / 'hand_landmark_full.onnx').is_file():
        pytest.fail('ONNX hand models missing: run `hand-mesh setup-models` (bootstrap.sh does)')


def test_main_json_on_short_video_and_photo(have_models, capsys):
    assert eval_keypoints.main(['--max-frames', '20', '--json']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['frames'] == 20 and result['detection_rate'] == 1.0
    assert result['median_px_error'] < 4.0
    assert result['photo']['hands_found'] == 2
    assert result['photo']['mean_px_error'] < 6.0
    assert result['photo']['sides'] == ['left', 'left']


def test_photo_input_lite_variant(have_models, capsys):
    code = eval_keypoints.main([str(data_dir() / 'hands.jpg'), '--variant', 'lite', '--json'])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['variant'] == 'lite' and result['hands_found'] == 2
    assert result['mean_px_error'] < 6.0


def test_missing_models_dir_is_a_clear_error(tmp_path, capsys):
    assert eval_keypoints.main(['--models-dir', str(tmp_path), '--json']) == 1
    assert 'setup-models' in capsys.readouterr().err
