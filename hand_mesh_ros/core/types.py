"""The data that flows between the core pipeline and the ROS layer.

Frames and units: camera optical frame (x right, y down, z forward), metres, seconds, pixels
of the raw image. Keypoint order is MediaPipe's 21.
"""

from dataclasses import dataclass, field
import enum
from typing import Dict, List, Optional, Tuple

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraMode, CameraModel, DEFAULT_HFOV_DEG
from hand_mesh_ros.core.hand.topology import SIDES

__all__ = ['DepthOutcome', 'DepthStatus', 'Frame', 'FrameResult', 'HandEstimate',
           'POSITION_MODES', 'SHAPE_SOURCES', 'SIDES']

#: The values a ``position_mode`` may take: those of :class:`CameraMode`, and a position
#: fused with a registered depth image (core/depth_stage).
POSITION_DEPTH_FUSED = 'depth_fused'
POSITION_MODES = tuple(mode.value for mode in CameraMode) + (POSITION_DEPTH_FUSED,)
#: Where a hand's 3D came from: the network's 3D refined by the tailor, or (the network's
#: 3D failed the gates) the hand model fitted to the 2D keypoints alone
#: (:mod:`hand_mesh_ros.core.fitting.refit_2d`).
SHAPE_NETWORK = 'network'
SHAPE_REFIT_2D = 'refit_2d'
SHAPE_SOURCES = (SHAPE_NETWORK, SHAPE_REFIT_2D)


@dataclass(frozen=True)
class Frame:
    """One camera image with its time, frame id and (optional) camera model.

    Attributes:
        rgb: (H, W, 3) uint8 image in RGB order (never modified by the pipeline).
        stamp_ns: image stamp in nanoseconds (the ROS header stamp).
        frame_id: the camera optical frame id.
        camera: a ``CameraModel`` built from camera_info, or None when there is none.
        depth: optional (H', W') float32 depth image in metres registered to the colour image
            (same optical frame; 0 or NaN = no data), or None.
        depth_camera: the depth image's own ``CameraModel`` when its size differs from the
            colour image's; None = the colour camera (then the sizes must match).
        position_mode: the camera decision's mode (a ``CameraMode`` value): None or the
            camera's own mode with a camera; without one 'assumed_fov' (None means it too:
            a centred pinhole of ``assumed_hfov_deg``) or 'weak_perspective' (the nominal
            camera of ``assumed_hfov_deg``). See :mod:`hand_mesh_ros.core.camera.decision`.
        assumed_hfov_deg: horizontal FOV of the camera assumed without a camera model.

    """

    rgb: np.ndarray
    stamp_ns: int
    frame_id: str = 'camera_optical_frame'
    camera: Optional[CameraModel] = None
    depth: Optional[np.ndarray] = None
    depth_camera: Optional[CameraModel] = None
    position_mode: Optional[str] = None
    assumed_hfov_deg: float = DEFAULT_HFOV_DEG


@dataclass(frozen=True)
class HandEstimate:
    """One hand in one frame, in the camera optical frame (metres).

    Attributes:
        track_id: stable id of the hand's track (never reused).
        side: 'left' or 'right' (anatomical, for a non-mirrored camera).
        side_score: confidence of ``side`` in [0, 1].
        score: confidence that this is a hand, in [0, 1].
        keypoints_px: (21, 2) the model's 21 keypoints projected into the raw image.
        observed_keypoints_px: (21, 2) the network's 2D keypoints in the raw image.
        joints_m: (21, 3) anatomical joint centres in the camera frame, MediaPipe order
            (fingertips: the tips of the mesh); ``keypoints_px`` are the landmark-convention
            keypoints the fit used, projected.
        vertices_m: (V, 3) mesh vertices in the camera frame.
        faces: (F, 3) int32 triangles, counter-clockwise seen from outside for ``side``.
        bone_transforms: (B, 4, 4) T_cam_bone: each bone frame of the hand model in the
            camera frame (rotation from the model's bone rotations, origin at the bone's
            anatomical joint centre).
        bone_parents: (B,) parent index per bone (-1 for the root).
        bone_names: B names, e.g. 'wrist', 'index1'.
        pose_coefficients: (B, 3) axis-angle per bone relative to its rest frame (bone 0:
            global orientation in the camera frame), radians.
        shape_coefficients: (S,) the hand model's shape coefficients.
        hand_model: 'anny' or 'mano'.
        hand_length_m: the track's hand length (wrist crease to middle fingertip), metres.
        reprojection_error_px: mean distance keypoints_px <-> observed_keypoints_px.
        position_mode: one of POSITION_MODES.
        confidence: in [0, 1]: ``score`` times the probability that the wrist lies within
            5 cm of ``bone_transforms``' wrist position under ``position_covariance_m2``.
        position_covariance_m2: (3, 3) covariance of the wrist position, camera optical
            frame, m^2 (fit, hand-size prior spread and the camera mode).
        keypoints_m: (21, 3) the model's landmark-convention keypoints in the camera frame
            (the 3D of ``keypoints_px``; compare these with MediaPipe-convention 3D).
        shape_source: one of SHAPE_SOURCES: where the hand's 3D came from.

    """

    track_id: int
    side: str
    side_score: float
    score: float
    keypoints_px: np.ndarray
    observed_keypoints_px: np.ndarray
    joints_m: np.ndarray
    vertices_m: np.ndarray
    faces: np.ndarray
    bone_transforms: np.ndarray
    bone_parents: np.ndarray
    bone_names: Tuple[str, ...]
    pose_coefficients: np.ndarray
    shape_coefficients: np.ndarray
    hand_model: str
    hand_length_m: float
    reprojection_error_px: float
    position_mode: str
    confidence: float
    position_covariance_m2: np.ndarray
    keypoints_m: np.ndarray
    shape_source: str = SHAPE_NETWORK

    def is_finite(self) -> bool:
        """Return True when every number of the estimate is finite."""
        arrays = (self.keypoints_px, self.observed_keypoints_px, self.joints_m,
                  self.vertices_m, self.bone_transforms, self.pose_coefficients,
                  self.shape_coefficients, self.position_covariance_m2, self.keypoints_m)
        scalars = (self.side_score, self.score, self.hand_length_m, self.reprojection_error_px,
                   self.confidence)
        return (all(np.all(np.isfinite(a)) for a in arrays)
                and all(np.isfinite(s) for s in scalars))


class DepthStatus(str, enum.Enum):
    """What a frame's depth image did."""

    NONE = ''                #: no depth image with the frame (or depth disabled)
    FUSED = 'fused'          #: at least one hand fused with the depth
    NOT_FUSED = 'not_fused'  #: depth usable, no hand fused
    REFUSED = 'refused'      #: the depth image was not usable (``DepthOutcome.reason``)


@dataclass(frozen=True)
class DepthOutcome:
    """A frame's depth outcome: its :class:`DepthStatus` and, when refused, why.

    Attributes:
        status: the :class:`DepthStatus`.
        reason: why the depth was refused (e.g. 'depth_size_mismatch'); '' otherwise.

    """

    status: DepthStatus = DepthStatus.NONE
    reason: str = ''

    @property
    def label(self) -> str:
        """Return the one-word label of summaries: the reason if refused, else the status."""
        return self.reason if self.status is DepthStatus.REFUSED else self.status.value


@dataclass
class FrameResult:
    """Everything the pipeline found in one frame.

    Attributes:
        stamp_ns: the frame's stamp (copied to every published message).
        frame_id: the camera optical frame id.
        image_size: (width, height) of the raw image.
        hands: the hands that passed every check.
        position_mode: how 3D positions were obtained for this frame.
        timings_ms: per-stage wall time in milliseconds (tracker stages, root recovery,
            tailor, depth fusion when depth came).
        rejected: counts of hands dropped by checks this frame, by reason.
        gate_figures: per hand that reached the plausibility gates, their figures
            (:func:`~hand_mesh_ros.core.fitting.plausibility.check_plausibility`) with
            ``track_id`` and ``rejected`` (the reason, or None).
        depth: the frame's :class:`DepthOutcome`.

    """

    stamp_ns: int
    frame_id: str
    image_size: Tuple[int, int]
    hands: List[HandEstimate] = field(default_factory=list)
    position_mode: str = 'full_intrinsics'
    timings_ms: Dict[str, float] = field(default_factory=dict)
    rejected: Dict[str, int] = field(default_factory=dict)
    gate_figures: List[dict] = field(default_factory=list)
    depth: DepthOutcome = DepthOutcome()
