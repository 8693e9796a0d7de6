"""The spin loop shared by the package's executables."""

import rclpy


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
