"""The executor and spin loop shared by the package's executables."""

import rclpy


def create_executor(context=None):
    """Return ``(executor, name)``: rclpy's C++ EventsExecutor where it exists, else Python's.

    rclpy's Python SingleThreadedExecutor rebuilds its wait set in Python for every callback
    (about 1 ms of CPU and of the GIL per image on a small machine, taken from the node's
    worker thread); the EventsExecutor (rclpy >= 9, Kilted; ``rclpy.experimental``) dispatches
    from C++ and halves the executor's CPU per image. Humble and Jazzy get the Python one.
    """
    try:
        from rclpy.experimental.events_executor import EventsExecutor
    except ImportError:
        EventsExecutor = None
    if EventsExecutor is not None:
        return EventsExecutor(context=context), 'EventsExecutor'
    from rclpy.executors import SingleThreadedExecutor
    return SingleThreadedExecutor(context=context), 'SingleThreadedExecutor'


def spin_until(executor, should_stop, period_s=0.1):
    """Spin ``executor`` until ``should_stop()`` or ROS shuts down.

    A shutdown (signal or external) may interrupt rcl in the middle of a spin; that error is
    swallowed once rclpy is no longer ok, and raised otherwise.
    """
    while rclpy.ok() and not should_stop():
        try:
            executor.spin_once(timeout_sec=period_s)
        except Exception:  # noqa: B902 - a shutdown may stop rcl mid-call
            if rclpy.ok():
                raise
