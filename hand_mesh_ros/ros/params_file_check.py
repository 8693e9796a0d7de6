"""Say when a ``--params-file`` given to the node holds nothing for it.

ROS 2 applies a parameters file section only when its key matches the node's fully qualified
name (``/cam_a/hand_mesh_node``): a file keyed ``hand_mesh_node:`` is silently ignored by
``/cam_a/hand_mesh_node``. Keys may use the wildcards of rcl's parameter files: ``*`` (one
name token) and ``**`` (any number of namespace tokens), as in ``/**:`` or
``/**/hand_mesh_node:``; keys may also be nested (``cam_a: hand_mesh_node: ros__parameters``).
"""

import re

import yaml

PARAMS_KEY = 'ros__parameters'


def params_files(argv):
    """Return the paths given with ``--params-file`` in the ``--ros-args`` of ``argv``."""
    paths = []
    for index, arg in enumerate(argv[:-1]):
        if arg == '--params-file':
            paths.append(argv[index + 1])
    return paths


def node_keys(document, prefix=''):
    """Return the node keys of a parsed params file: ``['/**', 'cam_a/hand_mesh_node']``."""
    keys = []
    if not isinstance(document, dict):
        return keys
    for key, value in document.items():
        path = '%s/%s' % (prefix, key) if prefix else str(key)
        if not isinstance(value, dict):
            continue
        if PARAMS_KEY in value:
            keys.append(path)
        keys.extend(node_keys({k: v for k, v in value.items() if k != PARAMS_KEY}, path))
    return keys


def key_pattern(key):
    """Return the regular expression of node names that params file ``key`` applies to."""
    pattern = ''
    for token in [t for t in key.split('/') if t]:
        if token == '**':
            pattern += '(?:/[^/]+)*'
        else:
            pattern += '/' + '[^/]*'.join(re.escape(part) for part in token.split('*'))
    return re.compile(pattern)


def key_matches(key, node_fqn):
    """Return True when params file ``key`` applies to the node named ``node_fqn``."""
    return key_pattern(key).fullmatch(node_fqn) is not None


def unmatched_file_warnings(argv, node_fqn):
    """Return one warning per params file in ``argv`` that has no section for ``node_fqn``."""
    warnings = []
    for path in params_files(argv):
        try:
            with open(path, encoding='utf-8') as stream:
                keys = node_keys(yaml.safe_load(stream))
        except (OSError, yaml.YAMLError):
            continue   # rcl has already refused an unreadable file at start-up
        if keys and not any(key_matches(key, node_fqn) for key in keys):
            warnings.append(
                'params file %s is keyed for %s, not for this node %s: none of its parameters '
                "apply here (key it '/**:' or '/**/%s:' to apply in any namespace)"
                % (path, ', '.join(repr(k) for k in keys), node_fqn,
                   node_fqn.rsplit('/', 1)[-1]))
    return warnings


def warned(node, argv):
    """Log a warning on ``node`` per params file in ``argv`` that misses it; return the node."""
    for warning in unmatched_file_warnings(argv, node.get_fully_qualified_name()):
        node.get_logger().warning(warning)
    return node
