"""The executor and spin loops shared by the package's executables and command-line tools."""

import signal
import sys
import threading
import time

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


def run_node(name, make_node, should_stop, start_errors, finish=None, events_executor=False):
    """Run an executable's node: create, spin until ``should_stop(node)``, close; exit code.

    The caller has initialised rclpy (each executable chooses its signal handling); this
    shuts it down. ``start_errors`` (exception types) raised while creating or running the
    node print one ``<name>: cannot start: <type>: <message>`` line and give exit code 1;
    Ctrl-C and an external shutdown end the run normally. ``finish(node)`` runs after a
    spin that ended without an error. The node's ``close()`` runs before it is destroyed.
    ``events_executor``: spin with :func:`create_executor`'s choice (logged), else rclpy's
    Python SingleThreadedExecutor.
    """
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    node = None
    code = 0
    try:
        node = make_node()
        if events_executor:
            executor, executor_name = create_executor()
            node.get_logger().info('executor: %s' % executor_name)
        else:
            executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until(executor, lambda: should_stop(node))
        if finish is not None:
            finish(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except start_errors as exc:
        print('%s: cannot start: %s: %s' % (name, type(exc).__name__, exc), file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def run_until_signal(name, make_node, start_errors, argv=None, events_executor=False):
    """Initialise rclpy, run ``make_node()``'s node until SIGINT or SIGTERM; the exit code.

    The signals only ask the spin loop to stop, so the node's ``close()`` still runs (and
    publishes) while ROS is up; rclpy's own handlers would invalidate the context first.
    ``start_errors`` and ``events_executor`` as in :func:`run_node`.
    """
    from rclpy.signals import SignalHandlerOptions
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_node(name, make_node, lambda node: stop.is_set(), start_errors,
                        events_executor=events_executor)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spin_node_while(node, keep_going, settle_s=0.0, each=None, period_s=0.05):
    """Spin ``node`` while ``keep_going()``, calling ``each()`` per spin, then ``settle_s`` more.

    For tools that watch a child process (e.g. camera_source) and then let the last messages
    arrive.
    """
    while keep_going():
        rclpy.spin_once(node, timeout_sec=period_s)
        if each is not None:
            each()
    end = time.monotonic() + settle_s
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=period_s)
