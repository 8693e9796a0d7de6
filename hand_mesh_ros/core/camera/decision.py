"""The one decision of an image's camera: which model, which position mode, which nominal FOV.

An image comes with a camera model built from its camera_info, or without one; then the
configured fallback applies (``camera.fallback_mode``: an assumed-FOV pinhole, or weak
perspective with the nominal camera of the same FOV). :func:`decide_camera` is where that
is decided; the ROS layer's camera resolver and the offline tool call it and hand the
result to the pipeline in the :class:`~hand_mesh_ros.core.types.Frame`
(``camera``, ``position_mode``, ``assumed_hfov_deg``). Root recovery, the tailor's projector
and the plausibility gates all take the focal length from the same :class:`CameraDecision`.
"""

from dataclasses import dataclass
from typing import Optional

from hand_mesh_ros.core.camera.camera import (CameraMode, CameraModel, DEFAULT_HFOV_DEG,
                                              fallback_camera, nominal_focal_px)


@dataclass(frozen=True)
class CameraDecision:
    """The camera of one image.

    Attributes:
        camera: the CameraModel (camera_info or the assumed-FOV pinhole), or None in
            weak-perspective mode.
        mode: the :class:`CameraMode`.
        hfov_deg: horizontal FOV (degrees) of the nominal camera used without a model.

    """

    camera: Optional[CameraModel]
    mode: CameraMode
    hfov_deg: float = DEFAULT_HFOV_DEG

    def focal_px(self, width_px: float) -> float:
        """Return the mean focal length (px) positions are computed with."""
        if self.camera is not None:
            return 0.5 * (float(self.camera.fx) + float(self.camera.fy))
        return nominal_focal_px(width_px, self.hfov_deg)


def decide_camera(width: int, height: int, camera: Optional[CameraModel] = None,
                  fallback_mode: str = CameraMode.ASSUMED_FOV.value,
                  hfov_deg: float = DEFAULT_HFOV_DEG) -> CameraDecision:
    """Return the :class:`CameraDecision` of a ``width`` x ``height`` image.

    ``camera`` (a usable model, or None) wins; without one ``fallback_mode``
    ('assumed_fov' or 'weak_perspective') with ``hfov_deg`` decides.

    Raises:
        ValueError: unknown ``fallback_mode``.
        CameraModelError: the size or FOV is not usable.

    """
    if camera is not None:
        return CameraDecision(camera, CameraMode(camera.mode), float(hfov_deg))
    camera, mode = fallback_camera(width, height, fallback_mode, float(hfov_deg))
    return CameraDecision(camera, mode, float(hfov_deg))


def frame_camera_decision(width: int, height: int, camera: Optional[CameraModel],
                          position_mode: Optional[str], hfov_deg: float) -> CameraDecision:
    """Return the decision a frame carries (``Frame.camera``, ``position_mode``, FOV).

    A frame without a camera and without a mode uses the documented default, the
    assumed-FOV pinhole.

    Raises:
        ValueError: ``position_mode`` contradicts the camera's mode, or is unknown.

    """
    if camera is not None:
        if position_mode is not None and CameraMode(position_mode) != CameraMode(camera.mode):
            raise ValueError('position_mode %r contradicts the camera model (%s)'
                             % (position_mode, CameraMode(camera.mode).value))
        return decide_camera(width, height, camera, hfov_deg=hfov_deg)
    mode = CameraMode.ASSUMED_FOV if position_mode is None else CameraMode(position_mode)
    if mode == CameraMode.FULL_INTRINSICS:
        raise ValueError('position_mode full_intrinsics needs a camera model')
    return decide_camera(width, height, None, mode.value, hfov_deg)
