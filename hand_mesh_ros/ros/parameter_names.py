"""Names in parameters: frame ids, TF prefixes, paths, topics, and each string parameter's rule.

:data:`STRING_RULES` validates every string parameter without choices of hand_mesh_node and
hand_fusion_node; :func:`string_rule_text` says in words what each accepts (the generated
parameters page prints it).
"""

import re

#: TF frame ids (REP 103/105 names such as ``camera_optical_frame`` or ``robot1/camera``):
#: ASCII letters, digits, '_', '-', '.', '/'-separated parts, no leading or trailing '/',
#: no whitespace; checked with fullmatch (``$`` would accept a trailing newline).
FRAME_ID_PATTERN = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*')
FRAME_ID_MAX_LENGTH = 256
#: output.tf_prefix: a letter, then letters, digits or '_' (frames <prefix>_<side>_<bone>).
TF_PREFIX_PATTERN = re.compile(r'[A-Za-z][A-Za-z0-9_]*')
TF_PREFIX_MAX_LENGTH = 64
#: Paths (model.models_dir, model.mano_path): no control characters, bounded length.
PATH_PATTERN = re.compile(r'[^\x00-\x1f\x7f]*')
PATH_MAX_LENGTH = 4096
#: Topic names (ROS 2 rules): '/'-separated tokens of letters, digits and '_' not starting
#: with a digit, optionally absolute ('/') or private ('~/'); no trailing or double '/'.
TOPIC_PATTERN = re.compile(r'(/|~/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')
TOPIC_MAX_LENGTH = 256


def name_problem(value, pattern, max_length, what, allow_empty=False):
    """Return why ``value`` is not a valid name for ``what``, or '' when it is."""
    if not isinstance(value, str):
        return '%s must be a string, got %r' % (what, value)
    if not value:
        return '' if allow_empty else '%s must not be empty' % what
    if len(value) > max_length:
        return '%s is %d characters long (at most %d)' % (what, len(value), max_length)
    if not pattern.fullmatch(value):
        return '%s %r is not allowed (%s)' % (what, value[:80], _RULES_TEXT[pattern.pattern])
    return ''


_RULES_TEXT = {
    FRAME_ID_PATTERN.pattern: "ASCII letters, digits, '_', '-', '.', parts separated by '/', "
                              "no whitespace, no leading or trailing '/'",
    TF_PREFIX_PATTERN.pattern: "a letter followed by letters, digits or '_'",
    PATH_PATTERN.pattern: 'no control characters such as a newline',
    TOPIC_PATTERN.pattern: "a ROS topic name: '/'-separated tokens of letters, digits and "
                           "'_' not starting with a digit",
}


def frame_id_problem(frame_id, what='frame id'):
    """Return why ``frame_id`` is not a valid TF frame id, or '' when it is."""
    return name_problem(frame_id, FRAME_ID_PATTERN, FRAME_ID_MAX_LENGTH, what)


def camera_list_problem(value, what='input.cameras'):
    """Return why ``value`` is not a list of camera namespaces or topics, or ''."""
    entries = value.replace(',', ' ').split() if isinstance(value, str) else None
    if not entries:
        return '%s must name at least one camera namespace or topic, got %r' % (what, value)
    if len(set(entries)) != len(entries):
        return '%s names a camera twice: %r' % (what, value)
    for entry in entries:
        problem = name_problem(entry, TOPIC_PATTERN, TOPIC_MAX_LENGTH, 'a camera in ' + what)
        if problem:
            return problem
    return ''


#: Every string parameter without choices: name -> (pattern, max length, empty allowed).
STRING_LIMITS = {
    'fusion.frame': (FRAME_ID_PATTERN, FRAME_ID_MAX_LENGTH, False),
    'output.tf_prefix': (TF_PREFIX_PATTERN, TF_PREFIX_MAX_LENGTH, True),
    'input.default_frame_id': (FRAME_ID_PATTERN, FRAME_ID_MAX_LENGTH, False),
    'model.models_dir': (PATH_PATTERN, PATH_MAX_LENGTH, True),
    'model.mano_path': (PATH_PATTERN, PATH_MAX_LENGTH, True),
    'input.depth_topic': (TOPIC_PATTERN, TOPIC_MAX_LENGTH, True),
    'input.depth_camera_info_topic': (TOPIC_PATTERN, TOPIC_MAX_LENGTH, True),
}


def _string_rule(name, pattern, max_length, allow_empty):
    """Return ``check(value) -> problem or ''`` for the string parameter ``name``."""
    return lambda value: name_problem(value, pattern, max_length, name, allow_empty)


#: Validation of every string parameter: name -> ``check(value) -> problem or ''``.
STRING_RULES = {name: _string_rule(name, *limits) for name, limits in STRING_LIMITS.items()}
STRING_RULES['input.cameras'] = camera_list_problem
#: What the string parameters outside :data:`STRING_LIMITS` accept, in words.
_SPECIAL_RULES_TEXT = {
    'input.cameras': 'camera namespaces or topics, separated by commas or spaces, each once'}


def string_rule_text(name):
    """Return what the string parameter ``name`` accepts, in words."""
    if name in _SPECIAL_RULES_TEXT:
        return _SPECIAL_RULES_TEXT[name]
    pattern, max_length, allow_empty = STRING_LIMITS[name]
    return '%s; 1 to %d characters%s' % (_RULES_TEXT[pattern.pattern], max_length,
                                         " or ''" if allow_empty else '')
