"""Evaluation: accuracy, temporal, root-recovery, gate, hard-hand and depth metrics, reports.

``hand-mesh eval <what>`` runs one of :data:`EVALUATIONS` (a module each, ``main(argv) -> int``).
"""

#: name -> (module, one-line help): the subcommands of ``hand-mesh eval``.
EVALUATIONS = {
    'keypoints': ('hand_mesh_ros.tools.evaluation.eval_keypoints',
                  '2D keypoints and detection rate vs the golden references'),
    'root': ('hand_mesh_ros.tools.evaluation.eval_root',
             'root-recovery error vs keypoint noise and distance (full K vs fixed focal)'),
    'confidence': ('hand_mesh_ros.tools.evaluation.eval_confidence',
                   'calibration of the confidence / wrist covariance on synthetic hands'),
    'mesh': ('hand_mesh_ros.tools.evaluation.eval_mesh',
             'mesh network: learned vs analytic lifting, video PA-MPJPE, speed'),
    'jitter': ('hand_mesh_ros.tools.evaluation.eval_jitter',
               'temporal coherence of the tailor on a static hand (with/without temporal terms)'),
    'resolution': ('hand_mesh_ros.tools.evaluation.eval_resolution',
                   'same scene at 0.5x / 2x / cropped with K transformed: root displacement'),
    'gates': ('hand_mesh_ros.tools.evaluation.eval_gates',
              'plausibility gates: real hands kept, injected runaways dropped, tailor on/off'),
    'hard-hands': ('hand_mesh_ros.tools.evaluation.eval_hard_hands',
                   'hard poses (call, rock, pointing, fists) whole, padded, close up, at the '
                   'border, occluded: every MediaPipe hand published or why not'),
    'depth': ('hand_mesh_ros.tools.evaluation.eval_depth',
              'RGB-D fusion: real colour + synthetic degraded depth, root and size vs RGB-only'),
    'depth-fit': ('hand_mesh_ros.tools.evaluation.eval_depth_fit',
                  'articulated depth fit on perturbed RGB-D scenes: wrist and joint errors vs '
                  'colour only and distance fusion'),
    'report': ('hand_mesh_ros.tools.evaluation.report',
               'keypoints, root, mesh, jitter and the video fit in one JSON report with PNG '
               'plots (--quick, --out DIR, --only)'),
}
