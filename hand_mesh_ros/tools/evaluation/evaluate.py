"""``hand-mesh eval <what>``: accuracy, temporal and root-recovery metrics.

Each evaluation lives in its own module with ``main(argv) -> int``; with ``--json`` each
prints one JSON object as its last line.
"""

import sys

from hand_mesh_ros.tools.cli import dispatch
from hand_mesh_ros.tools.evaluation import EVALUATIONS


def main(argv=None):
    """Dispatch to the chosen evaluation; return its exit code."""
    return dispatch('hand-mesh eval', EVALUATIONS, sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
