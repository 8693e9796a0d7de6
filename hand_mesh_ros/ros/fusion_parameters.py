"""The parameters of hand_fusion_node: one table (the same machinery as hand_mesh_node's).

Every entry needs a restart (read-only): they shape the node's subscriptions, timers and
the fuser. ``config/fusion.yaml`` holds the same defaults (a test keeps the two equal),
keyed ``/**/hand_fusion_node`` so that it applies in any namespace.
"""

from hand_mesh_ros.ros.parameters import COLLISION_PARAMETERS, params_file_text, ParamSpec

_RO = {'read_only': True}
#: The fused hands' TF frame prefix (and the derived prefix's last part).
FUSED_TF_PREFIX = 'fused'

#: Every parameter of hand_fusion_node.
FUSION_PARAMETERS = (
    ParamSpec('input.cameras', 'camera', 'The cameras, comma or space separated: a namespace '
              "(its hands come from <namespace>/hand/poses) or a topic ending in 'poses'.",
              **_RO),
    ParamSpec('input.tf_cache_s', 10.0, 'Seconds of /tf history kept for lookups at the '
              "hands' stamps.", min_value=1.0, max_value=600.0, **_RO),
    ParamSpec('fusion.frame', 'world', 'The common frame of the fused hands (e.g. world, '
              'base_link); every camera frame must reach it through TF.', **_RO),
    ParamSpec('fusion.rate_hz', 30.0, 'Fused outputs per second (an output is made only '
              'when a camera sent new hands).', min_value=1.0, max_value=1000.0, **_RO),
    ParamSpec('fusion.sync_tolerance_s', 0.1, "Largest time a camera's hands are moved (with "
              "their track's motion) to the common stamp; a camera further behind is left "
              'out of that output.', min_value=0.0, max_value=10.0, **_RO),
    ParamSpec('fusion.max_wait_s', 0.05, "Longest a camera's new hands wait for the other "
              'live cameras before an output is made without them (0 = an output as soon as '
              'any camera sent new hands).', min_value=0.0, max_value=1.0, **_RO),
    ParamSpec('fusion.stale_after_s', 0.5, 'A camera whose newest hands are older than this '
              '(node clock) is left out as stale (0 = never stale).',
              min_value=0.0, max_value=60.0, **_RO),
    ParamSpec('fusion.gate_probability', 0.99999, "Association gate: two cameras' hands are "
              'one hand when their Mahalanobis distance is inside this probability (3 dof).',
              min_value=0.5, max_value=1.0 - 1e-12, **_RO),
    ParamSpec('fusion.track_timeout_s', 0.5, 'A fused hand not seen by any camera for this '
              'long ends (its id is never reused).', min_value=0.0, max_value=60.0, **_RO),
    ParamSpec('fusion.velocity_window_s', 0.15, 'Seconds of fused positions the wrist '
              'velocity is fitted over (0 = no motion compensation).',
              min_value=0.0, max_value=5.0, **_RO),
    ParamSpec('output.publish_tf', True, 'Publish TF frames of the fused hands on /tf.', **_RO),
    ParamSpec('output.tf_prefix', FUSED_TF_PREFIX, 'Prefix of the fused TF frame names and '
              "collision object ids: <prefix>_<side>[<n>]_<keypoint>; '' = fused after the "
              "node's namespace (robot_fused in /robot).", **_RO),
    ParamSpec('output.diagnostics_period_s', 1.0, 'Period of /diagnostics in seconds.',
              min_value=0.1, max_value=60.0, **_RO),
) + COLLISION_PARAMETERS


def fusion_params_file_text():
    """Return the defaults as a ROS 2 params file (the content of config/fusion.yaml)."""
    return params_file_text('hand_fusion_node', FUSION_PARAMETERS,
                            source='hand_mesh_ros/ros/fusion_parameters.py')


if __name__ == '__main__':
    # Regenerate: python -m hand_mesh_ros.ros.fusion_parameters > config/fusion.yaml
    print(fusion_params_file_text(), end='')
