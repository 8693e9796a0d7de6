"""Name-checked fake objects: every public attribute must exist in a real name list.

The name lists are ``test/data/api_names/*.json``, extracted from the real TensorRT bindings
wheels and pycuda's sources by ``api_names``.
"""

import json
import pathlib

from api_names import name_present

NAMES_DIR = pathlib.Path(__file__).resolve().parent / 'data' / 'api_names'
#: TensorRT version -> the name list it is checked against.
VERSION_LISTS = {
    '8.5.2': 'tensorrt-8.6.1',
    '8.6.1': 'tensorrt-8.6.1',
    '10.3.0': 'tensorrt-10.3.0',
    '10.16.1.11': 'tensorrt-10.16.1',
    '11.4.0.106': 'tensorrt-11.4.0-cu12',
}
PYCUDA_LIST = 'pycuda-2026.1'
_LOADED = {}


def load_names(label):
    """Return the frozenset of names of one list in ``test/data/api_names``."""
    if label not in _LOADED:
        data = json.loads((NAMES_DIR / f'{label}.json').read_text(encoding='utf-8'))
        _LOADED[label] = frozenset(data['names'])
    return _LOADED[label]


def list_for_version(version):
    """Return the name-list label used for a TensorRT version string."""
    if version in VERSION_LISTS:
        return VERSION_LISTS[version]
    major = int(version.split('.')[0])
    return {8: 'tensorrt-8.6.1', 10: 'tensorrt-10.16.1'}.get(major, 'tensorrt-11.4.0-cu12')


def _check(owner, name):
    if name.startswith('_'):
        return
    names = type.__getattribute__(owner, '_api_names') if isinstance(owner, type) else (
        object.__getattribute__(owner, '_api_names'))
    if not name_present(name, names):
        label = (type.__getattribute__(owner, '_api_label') if isinstance(owner, type)
                 else object.__getattribute__(owner, '_api_label'))
        raise AttributeError(f'{name!r} does not exist in the {label} bindings')


class StrictMeta(type):
    """Metaclass: class-level attribute access is checked against the name list."""

    def __getattribute__(cls, name):
        _check(cls, name)
        return type.__getattribute__(cls, name)


class Strict(metaclass=StrictMeta):
    """Base of every fake object: instance attribute access is checked too."""

    _api_names = frozenset()
    _api_label = '?'

    def __getattribute__(self, name):
        _check(self, name)
        return object.__getattribute__(self, name)


def _bind(classes, label):
    """Give every class its name list (a fresh subclass per version)."""
    names = load_names(label)
    return {key: StrictMeta(cls.__name__, (cls,), {'_api_names': names, '_api_label': label})
            for key, cls in classes.items()}
