"""The one typed configuration tree of the pipeline (built once from ROS parameters).

Field names match the ROS parameter names (``<section>.<field>``); descriptions and ranges
live in the ROS layer's parameter table. ``dynamic`` fields may change while running.
"""

from dataclasses import dataclass, field, fields, replace

from hand_mesh_ros.core.camera.camera import DEFAULT_HFOV_DEG


@dataclass(frozen=True)
class ModelConfig:
    """Which networks run and where (read-only: a change needs a restart)."""

    models_dir: str = ''          # '' = hand_mesh_ros.paths.models_dir()
    variant: str = 'full'         # 'full' | 'lite'
    backend: str = 'auto'  # auto|onnxruntime|tensorrt|onnxruntime_tensorrt|onnxruntime_cuda
    num_threads: int = 2
    fp16: bool = True
    hand_model: str = 'anny'      # 'anny' | 'mano'
    mano_path: str = ''           # the user's MANO_RIGHT.pkl (left is mirrored)


@dataclass(frozen=True)
class DetectionConfig:
    """Detection and tracking (dynamic)."""

    max_hands: int = 2
    min_detection_score: float = 0.5
    min_presence: float = 0.5
    detect_interval: int = 10       # frames between detector runs while tracking
    lost_timeout_s: float = 0.5
    image_is_mirrored: bool = False  # True for selfie-style (mirrored) cameras


@dataclass(frozen=True)
class CameraConfig:
    """What to do without usable camera_info."""

    fallback_mode: str = 'assumed_fov'  # 'assumed_fov' | 'weak_perspective'
    assumed_hfov_deg: float = DEFAULT_HFOV_DEG


@dataclass(frozen=True)
class TailorConfig:
    """Weights of the tailor refinement (dynamic)."""

    enabled: bool = True
    iterations: int = 5
    min_relative_gain: float = 0.01     # stop when a step lowers the cost by less (0: never)
    temporal: bool = True               # use the track's previous state (priors, prediction)
    w_reprojection: float = 4.0         # per mm^2 at the hand's depth (px * depth / focal),
    #                                     Huber beyond robust_scale_mm
    w_joints3d: float = 0.03            # per mm^2 of the network's root-relative 3D joints,
    #                                     times the frame's trust in them (core/pipeline)
    w_pose_prior: float = 1.0           # per rad^2, towards the network's pose
    w_temporal_pose: float = 1000.0     # per rad^2, towards the track's previous pose
    w_temporal_translation: float = 1.0  # per mm^2, towards the constant-velocity prediction
    temporal_pose_blend: float = 0.3    # temporal prior centre: previous pose moved this
    #                                     fraction towards the network's pose
    w_limits: float = 1000.0            # per rad^2 beyond a joint limit
    w_twist: float = 20.0               # per rad^2 of twist / sideways / backward bending
    w_shape: float = 1.0                # identity prior: shape coefficients towards zero
    w_shape_track: float = 10.0         # towards the track's shape, times its confidence
    robust_scale_mm: float = 1.5        # Huber threshold, mm at the hand's depth
    hand_length_m: float = 0.0          # the user's known hand length (wrist crease to middle
    #                                     fingertip, m); 0 = unknown: population prior
    max_gap_s: float = 0.5              # longer gaps restart the track's motion model


@dataclass(frozen=True)
class GatesConfig:
    """Plausibility gates of a hand before it is published (dynamic; see core/plausibility)."""

    min_depth_m: float = 0.1            # working range of the wrist's depth
    max_depth_m: float = 3.0
    min_bone_ratio: float = 0.4         # bone length / the hand model's mean hand
    max_bone_ratio: float = 2.5
    max_network_error: float = 0.25     # network 3D vs its own 2D, mean, in hand sizes
    max_reprojection_error: float = 0.2  # published hand vs the 2D keypoints, in hand sizes
    refit_from_2d: bool = True          # refit a hand whose network 3D fails from its 2D alone
    max_refit_error: float = 0.08       # refitted hand vs the 2D keypoints, in hand sizes
    max_speed_mps: float = 5.0          # wrist speed since the track's last published hand
    max_gap_s: float = 0.5              # the speed gate looks back at most this far


@dataclass(frozen=True)
class DepthConfig:
    """Fusion of a registered depth image (dynamic; used only when a frame has depth)."""

    enabled: bool = True
    min_depth_m: float = 0.1            # depth values outside [min, max] are no data
    max_depth_m: float = 4.0
    noise_coeff_per_m: float = 0.005    # sensor noise sigma_z = c * z^2 (D435-like)
    articulated: bool = True            # fit pose, size and position to the depth surface


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    tailor: TailorConfig = field(default_factory=TailorConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)

    def with_values(self, values):
        """Return a copy with ``{'section.field': value}`` entries applied.

        Raises:
            KeyError: for an unknown name.

        """
        sections = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            section, _, key = name.partition('.')
            if section not in sections or key not in {f.name for f in fields(sections[section])}:
                raise KeyError('unknown pipeline setting %r' % name)
            sections[section] = replace(sections[section], **{key: value})
        return replace(self, **sections)

    def as_flat_dict(self):
        """Return ``{'section.field': value}`` for every setting."""
        return {'%s.%s' % (s.name, f.name): getattr(getattr(self, s.name), f.name)
                for s in fields(self) for f in fields(getattr(self, s.name))}
