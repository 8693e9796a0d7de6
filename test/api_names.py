"""Name lists of the real TensorRT bindings and pycuda, and the names the backend uses.

No GPU is needed.  The TensorRT Python bindings wheels on PyPI (``tensorrt-cu12-bindings``,
``tensorrt-cu13-bindings``, and ``tensorrt-bindings`` for 8.6) hold the compiled module
``tensorrt_bindings/tensorrt.so``, which cannot be imported without libnvinfer, but every
class, method, property and enum member it registers is a NUL-terminated string in it
(the linker may merge a name into the tail of a longer one: ``num_errors`` lives inside
``get_num_errors``).  pycuda's sdist holds its Boost.Python wrapper sources and
``pycuda/driver.py``.  :func:`used_names` reads, by AST, every attribute the backend takes
from a TensorRT or pycuda object (named by the rule of
:mod:`hand_mesh_ros.inference.tensorrt_api`) together with the range of TensorRT major
versions it is used under (``if major >= 11:`` branches).

``python test/api_names.py --write DIR`` downloads the wheels and the sdist
(``pip download --no-deps``) and writes one JSON name list per version into DIR
(``test/data/api_names``), which ``test/test_gpu_api_conformance.py`` checks against.
"""

import argparse
import ast
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import zipfile

from hand_mesh_ros.inference.tensorrt_api import PYCUDA_RECEIVERS
from hand_mesh_ros.inference.tensorrt_api import TRT_RECEIVERS

#: label -> (pip requirement, TensorRT version the label stands for).
TENSORRT_WHEELS = {
    'tensorrt-8.6.1': ('tensorrt-bindings==8.6.1', '8.6.1'),
    'tensorrt-10.3.0': ('tensorrt-cu12-bindings==10.3.0', '10.3.0'),
    'tensorrt-10.16.1': ('tensorrt-cu12-bindings==10.16.1.11', '10.16.1.11'),
    'tensorrt-11.4.0-cu12': ('tensorrt-cu12-bindings==11.4.0.106', '11.4.0.106'),
    'tensorrt-11.4.0-cu13': ('tensorrt-cu13-bindings==11.4.0.106', '11.4.0.106'),
}
PYCUDA_SDIST = ('pycuda-2026.1', 'pycuda==2026.1')
#: The wheel tags the lists were extracted from (CPython 3.11, x86_64 Linux).
WHEEL_PYTHON = '3.11'
WHEEL_PLATFORMS = ('manylinux_2_17_x86_64', 'manylinux_2_28_x86_64')
#: The backend's files that talk to TensorRT or pycuda.
BACKEND_FILES = ('tensorrt_api.py', 'tensorrt_backend.py', 'tensorrt_build.py')

_SO_NAME = re.compile(rb'(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]{1,63})\x00')
_CPP_STRING = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')
_CPP_MACRO = re.compile(r'DEF_SIMPLE_(?:METHOD|FUNCTION|RO_MEMBER|RW_MEMBER)\w*\(\s*(\w+)')


def names_from_binary(data):
    """Return the identifier-like NUL-terminated strings of a compiled module's bytes."""
    return {m.group(1).decode('ascii') for m in _SO_NAME.finditer(data)
            if not m.group(1).startswith(b'_Z')}


def names_from_python(source):
    """Return every name a Python module defines: functions, classes, assignments, attrs."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def names_from_bindings_wheel(path):
    """Return the sorted names of a TensorRT bindings wheel (its .so and its __init__.py)."""
    with zipfile.ZipFile(path) as wheel:
        members = wheel.namelist()
        so = [m for m in members if m.endswith('/tensorrt.so')]
        init = [m for m in members if m.endswith('tensorrt_bindings/__init__.py')]
        if not so:
            raise ValueError(f'{path}: no tensorrt.so inside (a placeholder wheel?)')
        names = names_from_binary(wheel.read(so[0]))
        for member in init:
            names |= names_from_python(wheel.read(member).decode('utf-8'))
    return sorted(names)


def names_from_pycuda_sdist(path):
    """Return the sorted names pycuda.driver defines (wrapper sources and driver.py)."""
    names = set()
    with tarfile.open(path) as sdist:
        for member in sdist.getmembers():
            if member.name.endswith(('wrap_cudadrv.cpp', 'wrap_helpers.hpp', 'mempool.cpp')):
                text = sdist.extractfile(member).read().decode('utf-8', 'replace')
                names |= set(_CPP_STRING.findall(text)) | set(_CPP_MACRO.findall(text))
            elif member.name.endswith('pycuda/driver.py'):
                names |= names_from_python(
                    sdist.extractfile(member).read().decode('utf-8'))
    return sorted(names)


def name_present(name, names):
    """Say whether ``name`` is in a name list, also as the tail of a longer string."""
    return name in names or any(other.endswith(name) for other in names)


def _receiver(node, receivers):
    """Return the receiver name an attribute chain starts from, or None."""
    while isinstance(node, ast.Attribute):
        base = node.value
        if isinstance(base, ast.Name) and base.id == 'self':
            name = node.attr.lstrip('_')
            return name if name in receivers else None
        node = base
    if isinstance(node, ast.Call):
        return _receiver(node.func, receivers)
    if isinstance(node, ast.Subscript):
        return _receiver(node.value, receivers)
    if isinstance(node, ast.Name) and node.id in receivers:
        return node.id
    return None


def _chain(node):
    """Return the attribute names of a chain like ``trt.ILogger.Severity.ERROR``."""
    names = []
    while isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id == 'self':
            break
        names.append(node.attr)
        node = node.value
        while isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
    return names[::-1]


_COMPARE = {ast.GtE: lambda v: (v, 99), ast.Gt: lambda v: (v + 1, 99),
            ast.Lt: lambda v: (0, v - 1), ast.LtE: lambda v: (0, v),
            ast.Eq: lambda v: (v, v)}


def _guard(test):
    """Return the (lo, hi) major range of ``if major <op> N``, or None for other tests."""
    if (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.left, ast.Name) and test.left.id == 'major'
            and isinstance(test.comparators[0], ast.Constant)
            and type(test.ops[0]) in _COMPARE):
        return _COMPARE[type(test.ops[0])](int(test.comparators[0].value))
    return None


def _complement(rng):
    lo, hi = rng
    return (0, lo - 1) if lo > 0 else (hi + 1, 99)


def used_names(source, filename='<source>'):
    """Return the TensorRT and pycuda names a backend module uses, with their version ranges.

    Returns:
        ``(uses, problems)``: ``uses`` is a list of ``(api, name, (lo, hi), line)``, api
        'tensorrt' or 'pycuda', (lo, hi) the TensorRT majors the use runs under; ``problems``
        lists values returned by a TensorRT/pycuda call that are stored under a name outside
        the naming rule and then have attributes taken (those would escape the check).
    """
    receivers = set(TRT_RECEIVERS) | set(PYCUDA_RECEIVERS)
    uses, problems = [], []

    def api_of(name):
        return 'pycuda' if name in PYCUDA_RECEIVERS else 'tensorrt'

    def visit(node, rng):
        if isinstance(node, ast.If):
            guard = _guard(node.test)
            visit(node.test, rng)
            inner = rng if guard is None else (max(rng[0], guard[0]), min(rng[1], guard[1]))
            other = rng if guard is None else _intersect(rng, _complement(guard))
            for child in node.body:
                visit(child, inner)
            for child in node.orelse:
                visit(child, other)
            return
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                root = _receiver(base, receivers)
                if root is not None:
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and not item.name.startswith('__'):
                            uses.append((api_of(root), item.name, rng, item.lineno))
        if isinstance(node, ast.Attribute):
            root = _receiver(node, receivers)
            if root is not None:
                for name in _chain(node):
                    if not name.startswith('__'):
                        uses.append((api_of(root), name, rng, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, rng)

    tree = ast.parse(source, filename)
    visit(tree, (0, 99))
    problems.extend(_escapes(tree, receivers, filename))
    return uses, problems


def _intersect(a, b):
    return (max(a[0], b[0]), min(a[1], b[1]))


def _escapes(tree, receivers, filename):
    """Find values from receiver calls stored under other names and then used as objects."""
    problems = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.Lambda)):
            continue
        derived = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and _has_receiver_call(node.value, receivers):
                for target in node.targets:
                    for key in _stored_names(target):
                        if key.split('.')[-1].lstrip('_') not in receivers:
                            derived[key] = node.lineno
        for node in ast.walk(func):
            if isinstance(node, ast.Attribute):
                key = _stored_key(node.value)
                if key in derived:
                    problems.append(
                        f'{filename}:{node.lineno}: {key}.{node.attr} takes an attribute of a '
                        f'value from a TensorRT/pycuda call (line {derived[key]}); name it by '
                        'the receiver rule')
    return problems


def _stored_key(node):
    """Return 'x' for a Name x, 'self.x' for self.x, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == 'self'):
        return 'self.' + node.attr
    return None


def _stored_names(target):
    """Return the keys an assignment target binds (names, self attributes, tuples of them)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [key for element in target.elts for key in _stored_names(element)]
    key = _stored_key(target)
    return [key] if key else []


def _has_receiver_call(node, receivers):
    return any(isinstance(sub, ast.Call) and _receiver(sub.func, receivers) is not None
               for sub in ast.walk(node))


def backend_uses(inference_dir=None):
    """Return ``(uses, problems)`` of all :data:`BACKEND_FILES` (see :func:`used_names`)."""
    if inference_dir is None:
        root = pathlib.Path(__file__).resolve().parents[1]
        inference_dir = root / 'hand_mesh_ros' / 'inference'
    uses, problems = [], []
    for name in BACKEND_FILES:
        path = pathlib.Path(inference_dir) / name
        file_uses, file_problems = used_names(path.read_text(encoding='utf-8'), str(path))
        uses += [(api, attr, rng, f'{name}:{line}') for api, attr, rng, line in file_uses]
        problems += file_problems
    return uses, problems


def download(requirement, dest, *, no_binary=False, timeout_s=300):
    """``pip download --no-deps`` one requirement into ``dest``; return the file path."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet',
               '--dest', str(dest), requirement]
    if no_binary:
        command[4:4] = ['--no-binary', ':all:', '--no-build-isolation']
    else:
        # The same wheel whatever Python runs this: the lists were made from these.
        command[4:4] = ['--only-binary', ':all:', '--python-version', WHEEL_PYTHON,
                        '--implementation', 'cp'] + [
                            arg for tag in WHEEL_PLATFORMS for arg in ('--platform', tag)]
    subprocess.run(command, check=True, capture_output=True, timeout=timeout_s)
    stem = requirement.split('==')[0].replace('-', '_').lower()
    version = requirement.split('==')[1]
    for path in sorted(set(dest.iterdir()) | before):
        normal = path.name.replace('-', '_').lower()
        if normal.startswith(f'{stem}_{version}'.lower()):
            return path
    raise FileNotFoundError(f'pip download {requirement}: no file in {dest}')


def derive_all(cache_dir):
    """Download every wheel and the sdist into ``cache_dir``; return label -> name list."""
    lists = {}
    for label, (requirement, _) in TENSORRT_WHEELS.items():
        lists[label] = names_from_bindings_wheel(download(requirement, cache_dir))
    label, requirement = PYCUDA_SDIST
    lists[label] = names_from_pycuda_sdist(download(requirement, cache_dir, no_binary=True))
    return lists


def main(argv=None):
    """Write the name lists (``--write DIR``) and report coverage of the backend's names."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--write', type=pathlib.Path, required=True, help='output directory')
    parser.add_argument('--cache', type=pathlib.Path,
                        default=pathlib.Path.home() / '.cache' / 'hand_mesh_ros' / 'api_wheels')
    args = parser.parse_args(argv)
    lists = derive_all(args.cache)
    args.write.mkdir(parents=True, exist_ok=True)
    for label, names in lists.items():
        source = TENSORRT_WHEELS.get(label, (dict([PYCUDA_SDIST]).get(label),))[0]
        (args.write / f'{label}.json').write_text(
            json.dumps({'source': source, 'names': names}, indent=0) + '\n', encoding='utf-8')
        print(f'{label}: {len(names)} names from {source}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
