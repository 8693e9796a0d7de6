"""``hand-mesh eval <what>``: accuracy, temporal and root-recovery metrics.

Each evaluation lives in its own module with ``main(argv) -> int``; with ``--json`` each
prints one JSON object as its last line.
"""

import importlib
import sys

EVALUATIONS = {
    'keypoints': ('hand_mesh_ros.tools.eval_keypoints',
                  '2D keypoints and detection rate vs the golden references'),
    'root': ('hand_mesh_ros.tools.eval_root',
             'root-recovery error vs keypoint noise and distance (full K vs fixed focal)'),
    'confidence': ('hand_mesh_ros.tools.eval_confidence',
                   'calibration of the confidence / wrist covariance on synthetic hands'),
    'mesh': ('hand_mesh_ros.tools.eval_mesh',
             'mesh network: learned vs analytic lifting, video PA-MPJPE, speed'),
    'jitter': ('hand_mesh_ros.tools.eval_jitter',
               'temporal coherence of the tailor on a static hand (with/without temporal terms)'),
    'resolution': ('hand_mesh_ros.tools.eval_resolution',
                   'same scene at 0.5x / 2x / cropped with K transformed: root displacement'),
    'gates': ('hand_mesh_ros.tools.eval_gates',
              'plausibility gates: real hands kept, injected runaways dropped, tailor on/off'),
    'depth': ('hand_mesh_ros.tools.eval_depth',
              'RGB-D fusion: real colour + synthetic degraded depth, root and size vs RGB-only'),
    'report': ('hand_mesh_ros.tools.report',
               'all of the above in one JSON report, with PNG plots (--quick, --out DIR)'),
}


def _usage():
    lines = ['usage: hand-mesh eval <what> [options]', '', 'what:']
    for name, (_, text) in EVALUATIONS.items():
        lines.append('  %-10s %s' % (name, text))
    return '\n'.join(lines)


def main(argv=None):
    """Dispatch to the chosen evaluation; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        return 0 if argv else 2
    if argv[0] not in EVALUATIONS:
        print("hand-mesh eval: unknown evaluation '%s'\n\n%s" % (argv[0], _usage()),
              file=sys.stderr)
        return 2
    module = importlib.import_module(EVALUATIONS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == '__main__':
    sys.exit(main())
