"""``log(level, message)`` over a logger: the one mapping of level names to logging calls.

Level names are rclpy's: 'debug', 'info', 'warn' (or 'warning'), 'error' (or 'fatal');
anything else logs at info. The logger is rclpy's (``node.get_logger()``) or Python's
``logging.Logger``: both have ``debug``, ``info``, ``warning`` and ``error``.
"""


def level_logger(logger):
    """Return ``log(level, message)`` over ``logger``.

    Each level has its own call site: rclpy ties a call site to one severity.
    """
    def log(level, message):
        level = str(level).lower()
        if level == 'debug':
            logger.debug(str(message))
        elif level in ('warn', 'warning'):
            logger.warning(str(message))
        elif level in ('error', 'fatal'):
            logger.error(str(message))
        else:
            logger.info(str(message))
    return log
