"""Exception types raised by the core (numpy/OpenCV) code of hand_mesh_ros.

Every error the core raises on purpose derives from :class:`HandMeshError`, so the ROS layer
can catch one type, drop the hand or frame that failed, and count it.
"""


class HandMeshError(Exception):
    """Base class of the errors that hand_mesh_ros raises on purpose."""


class CameraModelError(HandMeshError):
    """A camera model (CameraInfo fields) is invalid or unsupported."""


class RootRecoveryError(HandMeshError):
    """The absolute root translation of a hand could not be recovered.

    ``reason`` is a short machine-readable code (for diagnostics counters), e.g.
    ``'non_finite'``, ``'too_few_keypoints'``, ``'degenerate'``, ``'behind_camera'``,
    ``'too_far'``, ``'too_near'``.
    """

    def __init__(self, message, reason='failed'):
        """Store the human-readable ``message`` and the machine-readable ``reason``."""
        super().__init__(message)
        self.reason = reason


class ImageConversionError(HandMeshError):
    """An image message cannot be converted (unknown encoding, bad step, truncated, ...).

    ``reason`` is a short machine-readable code (for diagnostics counters), e.g.
    ``'unknown_encoding'``, ``'bad_step'``, ``'truncated'``, ``'empty'``, ``'too_large'``,
    ``'decode_failed'``.
    """

    def __init__(self, message, reason='failed'):
        """Store the human-readable ``message`` and the machine-readable ``reason``."""
        super().__init__(message)
        self.reason = reason


class InputError(HandMeshError):
    """A frame handed to the pipeline is unusable (not an image, wrong shape, too small).

    ``reason`` is a short machine-readable code (for diagnostics counters).
    """

    def __init__(self, message, reason='bad_input'):
        """Store the human-readable ``message`` and the machine-readable ``reason``."""
        super().__init__(message)
        self.reason = reason


class TailorError(HandMeshError):
    """The tailor could not refine a hand (degenerate or non-finite input or result).

    ``reason`` is a short machine-readable code (for diagnostics counters), e.g. 'too_far'.
    """

    def __init__(self, message, reason='tailor_failed'):
        """Store the human-readable ``message`` and the machine-readable ``reason``."""
        super().__init__(message)
        self.reason = reason
