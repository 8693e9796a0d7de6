"""CameraInfo -> CameraModel, pairing images with camera_info, and the fallback modes.

Each image is paired with the camera_info of the same stamp from a small bounded cache. When
none has that stamp the latest camera_info is used (a warning is logged once). When there is
no camera_info, or it is unusable (zeros, NaN, a non-positive focal length, an unknown
distortion model, a size that differs from the image's), the configured fallback is used:
``camera.fallback_mode`` = 'assumed_fov' (a pinhole with ``camera.assumed_hfov_deg``,
principal point at the image centre) or 'weak_perspective' (no camera model; the pipeline fits
a weak-perspective camera). The reason is reported in :class:`CameraResolution`, counted in
diagnostics and carried in every message's position status.

A camera_info is *stale* when none has been received for ``input.camera_info_timeout_s``
(measured on the node's monotonic clock, from the arrival of the last camera_info to the
arrival of the image): the last one is then no longer trusted and images use the fallback
with status 'stale' until camera_info comes back. A camera_info with the image's own stamp is
never stale.

Stamps: a ``builtin_interfaces/Time`` with ``nanosec >= 10^9`` or a negative ``sec`` is
invalid (:func:`stamp_problem`); the node counts and skips such images and camera_info rather
than normalising them, so a published stamp is always exactly the input's.
"""

from collections import OrderedDict
from dataclasses import dataclass
import time
from typing import Optional

from hand_mesh_ros.core.camera.camera import CameraModel, DEFAULT_HFOV_DEG
from hand_mesh_ros.core.camera.decision import decide_camera
from hand_mesh_ros.core.errors import CameraModelError
from hand_mesh_ros.ros.rectified_input import rectified_fields
from hand_mesh_ros.ros.stamp_cache import NS_PER_S, StampCache

#: CameraResolution.status values.
STATUS_OK = 'ok'                      # camera_info of the image's stamp, valid
STATUS_UNPAIRED = 'unpaired'          # no camera_info with that stamp: latest one used
STATUS_MISSING = 'missing'            # no camera_info received yet: fallback
STATUS_INVALID = 'invalid'            # camera_info rejected: fallback
STATUS_SIZE_MISMATCH = 'size_mismatch'  # camera_info is for another image size: fallback
STATUS_UNCALIBRATED = 'uncalibrated'  # sized, K all zero (driver without calibration): fallback
STATUS_STALE = 'stale'                # no camera_info for input.camera_info_timeout_s: fallback


def stamp_problem(stamp):
    """Return why a builtin_interfaces/Time is not a valid stamp, or '' when it is."""
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if not 0 <= nanosec < NS_PER_S:
        return 'stamp (%d s, %d ns) has nanosec outside [0, 10^9)' % (sec, nanosec)
    if sec < 0:
        return 'stamp (%d s, %d ns) is before 1970 (negative sec)' % (sec, nanosec)
    return ''


#: Longest D and distortion_model accepted (far above any model's: 14 and 19 characters);
#: longer ones are refused by their length, without being read for every image.
MAX_D_LENGTH = 64
MAX_MODEL_NAME_LENGTH = 64


def camera_info_fields(msg):
    """Return a hashable tuple of the CameraInfo fields that define a camera model.

    An over-long ``d`` or ``distortion_model`` is represented by ``('too_long', length)``
    (see :func:`camera_model_from_msg`).
    """
    roi = msg.roi
    d, model = msg.d, msg.distortion_model
    return (int(msg.width), int(msg.height),
            str(model) if len(model) <= MAX_MODEL_NAME_LENGTH else ('too_long', len(model)),
            tuple(float(v) for v in d) if len(d) <= MAX_D_LENGTH else ('too_long', len(d)),
            tuple(float(v) for v in msg.k),
            tuple(float(v) for v in msg.r), tuple(float(v) for v in msg.p),
            int(msg.binning_x), int(msg.binning_y),
            (int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width),
             bool(roi.do_rectify)))


def camera_model_from_msg(msg, rectified=False):
    """Build a validated CameraModel from a sensor_msgs/CameraInfo.

    ``rectified``: the image is rectified (P, no D or R; see
    :mod:`hand_mesh_ros.ros.rectified_input`); else raw (K and D).

    Raises:
        CameraModelError: the camera_info is unusable.

    """
    fields = camera_info_fields(msg)
    for name, value in (('distortion_model', fields[2]), ('d', fields[3])):
        if value and value[0] == 'too_long':
            raise CameraModelError('camera_info %s has %d elements (at most %d)' % (
                name, value[1], MAX_D_LENGTH if name == 'd' else MAX_MODEL_NAME_LENGTH))
    if rectified:
        return CameraModel.from_camera_info_fields(*rectified_fields(fields), rectified=True)
    return CameraModel.from_camera_info_fields(*fields)


@dataclass(frozen=True)
class CameraResolution:
    """The camera model chosen for one image, and why.

    Attributes:
        camera: the CameraModel for the image, or None (weak-perspective mode).
        mode: 'full_intrinsics', 'assumed_fov' or 'weak_perspective'.
        status: one of the STATUS_* values.
        problem: a human-readable reason when the status is not 'ok', else ''.
        hfov_deg: the FOV of the camera assumed without a model (``Frame.assumed_hfov_deg``).

    """

    camera: Optional[CameraModel]
    mode: str
    status: str
    problem: str = ''
    hfov_deg: float = DEFAULT_HFOV_DEG


class CameraResolver:
    """Choose the camera model for each image (cached conversions, documented fallbacks)."""

    def __init__(self, capacity=10, fallback_mode='assumed_fov',
                 assumed_hfov_deg=DEFAULT_HFOV_DEG,
                 stale_after_s=0.0, clock_ns=time.monotonic_ns, rectified=False):
        """Create a resolver with a cache of ``capacity`` camera_info messages.

        ``rectified``: images are rectified (camera models from P, see
        :func:`camera_model_from_msg`).

        ``stale_after_s``: seconds without camera_info after which the latest one is stale
        (0: never); ``clock_ns``: the monotonic clock used for arrivals (nanoseconds).
        """
        self.cache = StampCache(capacity)
        self.fallback_mode = fallback_mode
        self.assumed_hfov_deg = float(assumed_hfov_deg)
        self.stale_after_s = float(stale_after_s)
        self._clock_ns = clock_ns
        self.rectified = bool(rectified)
        self._last_info_ns = None     # arrival (clock_ns) of the latest camera_info
        self._models = OrderedDict()   # fields tuple -> CameraModel or CameraModelError

    def set_fallback(self, fallback_mode, assumed_hfov_deg):
        """Change the fallback mode and assumed FOV (a dynamic parameter change)."""
        self.fallback_mode = fallback_mode
        self.assumed_hfov_deg = float(assumed_hfov_deg)

    def add_camera_info(self, msg, received_ns=None):
        """Store a received camera_info (``received_ns``: arrival time, default now)."""
        self.cache.add(msg)
        self._last_info_ns = self._clock_ns() if received_ns is None else int(received_ns)

    def age_s(self, now_ns=None):
        """Return the seconds since the latest camera_info arrived (None before the first)."""
        if self._last_info_ns is None:
            return None
        now_ns = self._clock_ns() if now_ns is None else int(now_ns)
        return (now_ns - self._last_info_ns) / 1e9

    def _model_for(self, msg):
        """Return the CameraModel of ``msg`` or raise CameraModelError (results memoised)."""
        key = camera_info_fields(msg)
        cached = self._models.get(key)
        if cached is None:
            try:
                cached = camera_model_from_msg(msg, rectified=self.rectified)
            except CameraModelError as exc:
                cached = exc
            self._models[key] = cached
            while len(self._models) > 8:
                self._models.popitem(last=False)
        if isinstance(cached, CameraModelError):
            raise cached
        return cached

    def fallback(self, width, height, status, problem):
        """Return the fallback CameraResolution for an image of ``width`` x ``height``."""
        decision = decide_camera(width, height, None, self.fallback_mode,
                                 self.assumed_hfov_deg)
        return CameraResolution(decision.camera, decision.mode.value, status, problem,
                                decision.hfov_deg)

    def resolve(self, stamp_ns, width, height, received_ns=None):
        """Return the CameraResolution for an image (stamp in ns, size in px).

        ``received_ns``: the image's arrival on the resolver's clock (default now), to
        decide whether the latest camera_info is stale.
        """
        msg, exact = self.cache.lookup(stamp_ns)
        if msg is None:
            return self.fallback(width, height, STATUS_MISSING, 'no camera_info received')
        if not any(msg.k) and msg.width > 0 and msg.height > 0:   # sized, K zero: a driver's
            return self.fallback(width, height, STATUS_UNCALIBRATED,
                                 'camera_info is uncalibrated (K all zero), as a camera driver '
                                 'publishes without a calibration file')
        age_s = self.age_s(received_ns)
        if not exact and self.stale_after_s > 0.0 and age_s > self.stale_after_s:
            return self.fallback(
                width, height, STATUS_STALE,
                'no camera_info for %.1f s (input.camera_info_timeout_s = %g): the last one '
                'is stale' % (age_s, self.stale_after_s))
        try:
            camera = self._model_for(msg)
        except CameraModelError as exc:
            return self.fallback(width, height, STATUS_INVALID, 'camera_info rejected: %s' % exc)
        try:
            camera.check_image_size(width, height)
        except CameraModelError as exc:
            return self.fallback(width, height, STATUS_SIZE_MISMATCH, str(exc))
        decision = decide_camera(width, height, camera, hfov_deg=self.assumed_hfov_deg)
        if exact:
            return CameraResolution(camera, decision.mode.value, STATUS_OK,
                                    hfov_deg=decision.hfov_deg)
        return CameraResolution(camera, decision.mode.value, STATUS_UNPAIRED,
                                'no camera_info with the image stamp; latest one used',
                                decision.hfov_deg)
