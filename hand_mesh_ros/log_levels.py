"""Log level names: the ``log(level, message)`` callables of the project take rclpy's names.

``level`` is 'debug', 'info', 'warn' (or 'warning'), 'error' or 'fatal'; an unknown name logs
at info. :func:`python_log_level` maps a name to the :mod:`logging` level, the one mapping
every logger adapter (Python logging, rclpy) uses.
"""

import logging

#: Level name -> :mod:`logging` level.
LOG_LEVELS = {
    'debug': logging.DEBUG,
    'info': logging.INFO,
    'warn': logging.WARNING,
    'warning': logging.WARNING,
    'error': logging.ERROR,
    'fatal': logging.CRITICAL,
}


def python_log_level(level):
    """Return the :mod:`logging` level of the level name ``level`` (INFO when unknown)."""
    return LOG_LEVELS.get(str(level).lower(), logging.INFO)
