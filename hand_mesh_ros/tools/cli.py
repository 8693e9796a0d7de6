"""``hand-mesh``: one command-line entry point for everything but the node.

Each sub-command lives in its own module with a ``main(argv) -> int``; this module only
dispatches, importing the chosen module lazily so that e.g. ``hand-mesh eval`` never loads
rclpy and ``hand-mesh smoke`` never loads the models.
"""

import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    'process': ('hand_mesh_ros.tools.process',
                'run the pipeline on a video / image folder / rosbag2 (mcap, sqlite3): bag, '
                'JSON, CSV, overlay'),
    'setup-models': ('hand_mesh_ros.tools.setup_models',
                     'fetch + convert released weights, check the hand model (idempotent)'),
    'bench': ('hand_mesh_ros.tools.bench',
              'per-stage timings, the MediaPipe peer, end-to-end latency over DDS'),
    'build-engine': ('hand_mesh_ros.tools.build_engine',
                     'build TensorRT engines ahead of time (Jetson deployment)'),
    'demo': ('hand_mesh_ros.tools.demo',
             'the sample video through camera_source and hand_mesh_node over DDS, recorded'),
    'eval': ('hand_mesh_ros.tools.evaluate',
             'accuracy, temporal and root-recovery metrics (keypoints, root, mesh, jitter)'),
    'soak': ('hand_mesh_ros.tools.soak',
             'overload and long-run checks of hand_mesh_node: memory, latency, drops, NaN'),
    'smoke': ('hand_mesh_ros.ros.smoke',
              'publish and receive the package messages across two processes over DDS'),
}


def _usage():
    lines = ['usage: hand-mesh <command> [options]', '', 'commands:']
    width = max(len(name) for name in COMMANDS)
    for name, (_, help_text) in COMMANDS.items():
        lines.append('  %s  %s' % (name.ljust(width), help_text))
    lines.append('')
    lines.append("Run 'hand-mesh <command> --help' for a command's options.")
    return '\n'.join(lines)


def main(argv=None):
    """Dispatch ``hand-mesh <command> ...`` to the command's module; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print("hand-mesh: unknown command '%s'\n\n%s" % (name, _usage()), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == '__main__':
    sys.exit(main())
