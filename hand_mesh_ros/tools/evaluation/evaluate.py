"""``hand-mesh eval <what>``: accuracy, temporal and root-recovery metrics.

Each evaluation lives in its own module with ``main(argv) -> int``; with ``--json`` each
prints one JSON object as its last line.
"""

import sys

from hand_mesh_ros.tools.cli import dispatch

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
    'depth': ('hand_mesh_ros.tools.evaluation.eval_depth',
              'RGB-D fusion: real colour + synthetic degraded depth, root and size vs RGB-only'),
    'depth-fit': ('hand_mesh_ros.tools.evaluation.eval_depth_fit',
                  'articulated depth fit: perturbed hands, wrist and joint errors, fit vs fusion'),
    'report': ('hand_mesh_ros.tools.evaluation.report',
               'all of the above in one JSON report, with PNG plots (--quick, --out DIR)'),
}


def main(argv=None):
    """Dispatch to the chosen evaluation; return its exit code."""
    return dispatch('hand-mesh eval', EVALUATIONS, sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
