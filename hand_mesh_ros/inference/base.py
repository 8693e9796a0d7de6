"""The one small interface every inference backend implements.

A session wraps one model file.  ``run`` takes a dict of named numpy arrays and
returns a dict of named numpy arrays.  Feeds are validated against
``input_specs`` before they reach the runtime, so a wrong name, rank or size
becomes one :class:`InferenceError` naming the model file instead of a runtime
traceback.
"""

import abc
import logging
import pathlib

import numpy as np

from hand_mesh_ros.log_levels import python_log_level

_LOGGER = logging.getLogger('hand_mesh_ros.inference')


class InferenceError(RuntimeError):
    """A model could not be loaded or run; the message names the file or library."""


class BackendUnavailableError(InferenceError):
    """The requested backend cannot run on this machine (module, driver or device missing)."""


def make_log(log=None):
    """Return a ``log(level, msg)`` callable; ``None`` logs through the ``logging`` module.

    ``level`` is one of 'debug', 'info', 'warn', 'error' (the rclpy logger names).
    """
    if log is not None:
        return log

    def _log(level, msg):
        _LOGGER.log(python_log_level(level), msg)

    return _log


def describe_shape(shape):
    """Format a spec shape, e.g. ``(None, 3, 8, 8)`` -> ``'[N, 3, 8, 8]'``."""
    return '[' + ', '.join('N' if d is None else str(d) for d in shape) + ']'


class InferenceSession(abc.ABC):
    """Abstract base of a loaded model.

    Attributes:
        backend_name: 'onnxruntime' or 'tensorrt'.
        model_path: the model file this session runs (ONNX, or a TensorRT engine).
        input_specs: name -> (shape, dtype); a shape holds ``None`` for each dynamic dim.
        output_names: output names in the model's order.
        max_batch: largest first (batch) dim ``run`` accepts for a dynamic-batch input
            (a TensorRT optimisation profile's maximum), or None for no limit.  Callers
            split larger batches (``HandTracker`` reads it).

    Sessions are not re-entrant: call ``run`` from one thread at a time (the
    backends hold a lock, so concurrent calls serialise rather than corrupt).
    """

    backend_name = ''

    def __init__(self, model_path):
        """Store the model path; subclasses fill the specs."""
        self.model_path = pathlib.Path(model_path)
        self.input_specs = {}
        self.output_names = []
        self.max_batch = None

    @abc.abstractmethod
    def run(self, feeds):
        """Run the model.

        Args:
            feeds: input name -> numpy array with the shape of ``input_specs``.

        Returns:
            output name -> numpy array, one entry per name in ``output_names``.

        Raises:
            InferenceError: feeds do not match the model, or the runtime failed.
        """

    def close(self):
        """Release runtime resources (device memory, contexts); safe to call twice."""

    def __enter__(self):
        """Enter a ``with`` block."""
        return self

    def __exit__(self, *exc_info):
        """Close the session at the end of a ``with`` block."""
        self.close()

    def __repr__(self):
        """Name the backend, the file and the inputs."""
        inputs = ', '.join(f'{n}{describe_shape(s)}' for n, (s, _) in self.input_specs.items())
        return f'<{type(self).__name__} {self.backend_name} {self.model_path.name}: {inputs}>'

    def require_inputs(self, expected):
        """Check at start-up that the model has the inputs the caller was written for.

        Args:
            expected: input name -> shape (``None`` for a dim the caller does not fix).

        Raises:
            InferenceError: naming the file, the missing input or the mismatching dims.
        """
        for name, want in expected.items():
            if name not in self.input_specs:
                raise InferenceError(
                    f'model {self.model_path} has no input {name!r} '
                    f'(inputs: {sorted(self.input_specs)}); is it the right model file?')
            have = self.input_specs[name][0]
            if len(have) != len(want) or any(
                    w is not None and h is not None and int(w) != int(h)
                    for h, w in zip(have, want)):
                raise InferenceError(
                    f'model {self.model_path} input {name!r} has shape {describe_shape(have)}, '
                    f'expected {describe_shape(want)}; is it the right model file?')

    def validate_feeds(self, feeds):
        """Check names, ranks and fixed dims; return contiguous arrays of the spec dtype.

        Inputs are never modified: a cast or copy is made where needed.

        Raises:
            InferenceError: naming the model file and what does not match.
        """
        if not isinstance(feeds, dict):
            raise InferenceError(
                f'{self.model_path.name}: feeds must be a dict of name -> array, '
                f'got {type(feeds).__name__}')
        missing = sorted(set(self.input_specs) - set(feeds))
        unknown = sorted(set(feeds) - set(self.input_specs))
        if missing or unknown:
            raise InferenceError(
                f'{self.model_path}: feeds do not match the model inputs '
                f'{sorted(self.input_specs)} (missing {missing}, unknown {unknown})')
        checked = {}
        for name, (shape, dtype) in self.input_specs.items():
            checked[name] = self._check_one(name, feeds[name], shape, dtype)
        return checked

    def _check_one(self, name, value, shape, dtype):
        array = np.asarray(value)
        where = f'{self.model_path.name} input {name!r}'
        if array.dtype.kind not in 'biuf':
            raise InferenceError(f'{where}: dtype {array.dtype} is not numeric')
        if array.ndim != len(shape):
            raise InferenceError(
                f'{where}: expected rank {len(shape)} {describe_shape(shape)}, '
                f'got shape {tuple(array.shape)}')
        for axis, (want, got) in enumerate(zip(shape, array.shape)):
            if got == 0:
                raise InferenceError(f'{where}: dim {axis} is zero (shape {tuple(array.shape)})')
            if want is not None and int(want) != int(got):
                raise InferenceError(
                    f'{where}: expected shape {describe_shape(shape)}, '
                    f'got {tuple(array.shape)} (dim {axis})')
        if shape and shape[0] is None and self.max_batch and array.shape[0] > self.max_batch:
            raise InferenceError(
                f'{where}: batch {array.shape[0]} exceeds the profile maximum '
                f'{self.max_batch} (max_batch); split the batch or raise max_batch')
        return np.ascontiguousarray(array, dtype=dtype)
