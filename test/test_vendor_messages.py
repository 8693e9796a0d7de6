"""The minimal message definitions in vendor/ have upstream's fields, types and constants."""

from pathlib import Path

import pytest

parser = pytest.importorskip('rosidl_adapter.parser',
                             reason='rosidl_adapter (ROS 2 build tools) is not installed')

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / 'test' / 'data' / 'upstream_msgs'
MESSAGES = [('moveit_msgs', 'CollisionObject'), ('object_recognition_msgs', 'ObjectType')]


def definition(path, package, name):
    """Return (fields as (type, name), constants as (type, name, value)) of a .msg file."""
    spec = parser.parse_message_string(package, name, path.read_text())
    fields = [(str(field.type), field.name) for field in spec.fields]
    constants = [(c.type, c.name, c.value) for c in spec.constants]
    return fields, constants


@pytest.mark.parametrize('package, name', MESSAGES)
def test_vendor_definition_equals_upstream(package, name):
    upstream = definition(UPSTREAM / package / ('%s.msg' % name), package, name)
    vendor = definition(ROOT / 'vendor' / package / 'msg' / ('%s.msg' % name), package, name)
    assert vendor == upstream
    assert upstream[0], 'the upstream copy has no fields'


def test_collision_object_has_the_fields_moveit_reads():
    fields, constants = definition(UPSTREAM / 'moveit_msgs' / 'CollisionObject.msg',
                                   'moveit_msgs', 'CollisionObject')
    assert ('object_recognition_msgs/ObjectType', 'type') in fields
    assert ('shape_msgs/SolidPrimitive[]', 'primitives') in fields
    assert {(n, v) for _, n, v in constants} == {('ADD', 0), ('REMOVE', 1), ('APPEND', 2),
                                                 ('MOVE', 3)}


@pytest.mark.parametrize('package, name', MESSAGES)
def test_built_message_has_the_upstream_fields(package, name):
    module = pytest.importorskip(package + '.msg', reason='%s is not built' % package)
    built = getattr(module, name).get_fields_and_field_types()
    fields, _ = definition(UPSTREAM / package / ('%s.msg' % name), package, name)
    assert list(built) == [field for _, field in fields]
    for type_name, field in fields:
        assert built[field].replace('sequence<', '').rstrip('>') in (
            type_name.rstrip('[]'), 'octet') or type_name == 'byte', (field, built[field])
