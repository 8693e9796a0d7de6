"""``hand-mesh``: one command-line entry point for everything but the node.

Each sub-command lives in its own module with a ``main(argv) -> int``; this module only
dispatches, importing the chosen module lazily so that e.g. ``hand-mesh eval`` never loads
rclpy and ``hand-mesh smoke`` never loads the models.
"""

import importlib
import sys

from hand_mesh_ros.tools.evaluation import EVALUATIONS

# name -> (module, one-line help)
COMMANDS = {
    'process': ('hand_mesh_ros.tools.process.process',
                'run the pipeline on a video / image folder / rosbag2 (mcap, sqlite3): bag, '
                'JSON, CSV, overlay'),
    'setup-models': ('hand_mesh_ros.tools.setup_models',
                     'download the MediaPipe weights (network + pip), convert them to ONNX, '
                     'build the mesh networks into the models directory (idempotent)'),
    'bench': ('hand_mesh_ros.tools.bench.bench',
              'per-stage timings, the MediaPipe peer, end-to-end latency over DDS'),
    'build-engine': ('hand_mesh_ros.tools.build_engine',
                     'build TensorRT engines ahead of time (Jetson deployment)'),
    'demo': ('hand_mesh_ros.tools.demo',
             'the sample video through camera_source and hand_mesh_node over DDS, recorded'),
    'eval': ('hand_mesh_ros.tools.evaluation.evaluate',
             'accuracy, temporal and root-recovery metrics: ' + ', '.join(EVALUATIONS)),
    'soak': ('hand_mesh_ros.tools.soak.soak',
             'overload and long-run checks of hand_mesh_node: memory, latency, drops, NaN'),
    'smoke': ('hand_mesh_ros.ros.smoke',
              'publish and receive the package messages across two processes over DDS'),
}


def usage(prog, commands):
    """Return the usage text of ``prog`` listing ``commands`` (name -> (module, help))."""
    lines = ['usage: %s <command> [options]' % prog, '', 'commands:']
    width = max(len(name) for name in commands)
    for name, (_, help_text) in commands.items():
        lines.append('  %s  %s' % (name.ljust(width), help_text))
    lines.append('')
    lines.append("Run '%s <command> --help' for a command's options; with --json a command "
                 'prints one JSON object as its last line.' % prog)
    return '\n'.join(lines)


def dispatch(prog, commands, argv):
    """Run ``commands[argv[0]]``'s ``main(argv[1:])`` (module imported lazily); return its code.

    ``commands`` maps a name to (module path, one-line help). No command prints the usage
    and returns 2; ``-h``/``--help`` prints it and returns 0; an unknown one says so on
    stderr and returns 2.
    """
    argv = list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage(prog, commands))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print("%s: unknown command '%s'\n\n%s" % (prog, name, usage(prog, commands)),
              file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name][0])
    return int(module.main(rest) or 0)


def main(argv=None):
    """Dispatch ``hand-mesh <command> ...`` to the command's module; return its exit code."""
    return dispatch('hand-mesh', COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
