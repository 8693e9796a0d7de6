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


def level_logger(logger):
    """Return ``log(level, message)`` over ``logger`` (rclpy's or a :mod:`logging` Logger).

    Each severity has its own call site: rclpy ties a call site to one severity.
    """
    def log(level, message):
        severity = python_log_level(level)
        if severity <= logging.DEBUG:
            logger.debug(str(message))
        elif severity >= logging.ERROR:
            logger.error(str(message))
        elif severity >= logging.WARNING:
            logger.warning(str(message))
        else:
            logger.info(str(message))
    return log
