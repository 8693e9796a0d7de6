"""The parameter table: complete, consistent with config/hand_mesh.yaml, validated."""

from pathlib import Path

import pytest
import yaml

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from hand_mesh_ros.core.config import PipelineConfig  # noqa: E402,I100
from hand_mesh_ros.ros import parameters as prm  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
YAML_PATH = ROOT / 'config' / 'hand_mesh.yaml'


def _flatten(tree, prefix=''):
    out = {}
    for key, value in tree.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(_flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def test_every_pipeline_setting_has_exactly_one_spec():
    names = [spec.name for spec in prm.PARAMETERS]
    assert len(names) == len(set(names))
    pipeline = set(PipelineConfig().as_flat_dict())
    assert pipeline <= set(names), 'no parameter spec for %s' % sorted(pipeline - set(names))
    node_level = set(names) - pipeline
    assert all(n.startswith(('input.', 'output.')) for n in node_level)
    for spec in prm.PARAMETERS:
        assert spec.description.strip(), spec.name
        assert spec.check(spec.default) == '', spec.name
        if spec.name.startswith('model.'):
            assert spec.read_only, spec.name


def test_yaml_holds_exactly_the_table_defaults():
    data = yaml.safe_load(YAML_PATH.read_text())
    flat = _flatten(data[prm.PARAMS_FILE_KEY + 'hand_mesh_node']['ros__parameters'])
    defaults = prm.defaults()
    hint = 'regenerate: python -m hand_mesh_ros.ros.parameters > config/hand_mesh.yaml'
    assert set(flat) == set(defaults), hint
    for name, value in defaults.items():
        assert flat[name] == value and type(flat[name]) is type(value), '%s; %s' % (name, hint)
    assert YAML_PATH.read_text() == prm.params_file_text(), (
        'regenerate: python -m hand_mesh_ros.ros.parameters > config/hand_mesh.yaml')


def test_yaml_parses_with_rclpy_into_typed_parameters():
    from rclpy.parameter import parameter_dict_from_yaml_file
    # rclpy's own parser reads keys literally; rcl (the node) matches /**/hand_mesh_node in
    # any namespace (test_params_namespace).
    params = parameter_dict_from_yaml_file(str(YAML_PATH), use_wildcard=True,
                                           target_nodes=['/**/hand_mesh_node'])
    assert set(params) == set(prm.defaults())
    assert params['tailor.w_limits'].value.double_value == prm.defaults()['tailor.w_limits']
    assert params['detection.max_hands'].value.integer_value == 2


def test_descriptors_carry_ranges_and_read_only():
    desc = prm.descriptor(prm.SPECS['detection.min_detection_score'])
    assert desc.floating_point_range[0].from_value == 0.0
    assert desc.floating_point_range[0].to_value == 1.0
    assert not desc.read_only and desc.description
    desc = prm.descriptor(prm.SPECS['detection.max_hands'])
    assert (desc.integer_range[0].from_value, desc.integer_range[0].to_value) == (1, 8)
    desc = prm.descriptor(prm.SPECS['model.backend'])
    assert desc.read_only and 'onnxruntime' in desc.additional_constraints


def test_validate_changes():
    assert prm.validate_changes({'detection.max_hands': 4, 'tailor.w_twist': 0.0}) == ''
    assert 'must be <=' in prm.validate_changes({'detection.max_hands': 9})
    assert 'must be >=' in prm.validate_changes({'tailor.w_limits': -1.0})
    assert 'read-only' in prm.validate_changes({'model.variant': 'lite'})
    assert 'one of' in prm.validate_changes({'camera.fallback_mode': 'pinhole'})
    assert 'must be a float' in prm.validate_changes({'camera.assumed_hfov_deg': 'wide'})
    assert 'unknown' in prm.validate_changes({'detection.nope': 1})
    assert prm.validate_changes({'output.tf_prefix': 'robot1_hand'}) == ''
    assert prm.validate_changes({'output.tf_prefix': 'a/b'}) != ''


def test_pipeline_config_is_built_from_the_values():
    values = dict(prm.defaults(), **{'detection.max_hands': 1, 'tailor.enabled': False,
                                     'output.publish_tf': False})
    config = prm.pipeline_config(values)
    assert config.detection.max_hands == 1 and config.tailor.enabled is False
    assert config.as_flat_dict()['model.variant'] == 'full'
