"""Cost of the mesh network over the bare landmark network (ONNX Runtime, CPU); prints numbers.

Usage::

    python -m hand_mesh_ros.tools.bench.bench_mesh_network [--models-dir models] [--json]
        [--lifting FILE] [--threads 1 2] [--batch 1 2] [--runs 300] [--profile]

1. Graph size of the lifting graph: ONNX nodes as stored and after ONNX Runtime's
   ``ORT_ENABLE_ALL`` optimisation (what actually runs).
2. With ``--profile``: ONNX Runtime's per-node profile of the lifting graph (batch 1), summed
   per op type: node count and total microseconds per run.
3. Speed: for each variant, intra-op thread count and batch size, the bare landmark network
   ``hand_landmark_<v>.onnx`` and the mesh network ``hand_mesh_<v>.onnx`` run alternately in
   rounds of the same process, so that load from other processes hits both alike; the medians
   of the per-call times and their ratio; the lifting graph alone likewise.

Sessions use the project's settings (one inter-op thread, no spin-waiting). Timings are for
reading, never asserted by a test. With ``--json`` the last line is one JSON object.
"""

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

from hand_mesh_ros.paths import models_dir

VARIANTS = ('lite', 'full')
LIFTING_INPUT = 'mesh_world_landmarks'


def make_session(path, threads, profile_dir=None, optimized_path=None):
    """Return an ONNX Runtime CPU session of ``path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort
    from hand_mesh_ros.inference.onnxruntime_backend import SESSION_CONFIG
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(profile_dir) / 'lifting')
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
        options.log_severity_level = 3  # not the warning that the file is machine-specific
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def node_counts(path):
    """Return {'stored': n, 'optimized': n} ONNX node counts of the graph at ``path``."""
    import onnx
    stored = len(onnx.load(str(path)).graph.node)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'optimized.onnx'
        make_session(path, 1, optimized_path=out)
        optimized = len(onnx.load(str(out)).graph.node)
    return {'stored': stored, 'optimized': optimized}


def world_landmarks(batch, seed=0):
    """Return plausible world landmarks (batch, 63) float32 (a flat hand with noise)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((21, 3))
    base[:, 1] = -np.linspace(0.0, 0.15, 21)
    base[:, 0] = np.linspace(-0.03, 0.03, 21)
    return (base[None] + 0.005 * rng.standard_normal((batch, 21, 3))).reshape(
        batch, 63).astype(np.float32)


def profile_ops(path, runs=200):
    """Return {op type: {'nodes', 'us_per_run'}} of the lifting graph at batch 1."""
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(path, 1, profile_dir=tmp)
        feeds = {LIFTING_INPUT: world_landmarks(1)}
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op, nodes = {}, {}
    for event in events:
        args = event.get('args', {})
        if event.get('cat') != 'Node' or not event['name'].endswith('_kernel_time'):
            continue
        op = args.get('op_name', '?')
        per_op[op] = per_op.get(op, 0.0) + float(event['dur'])
        nodes.setdefault(op, set()).add(event['name'])
    return {op: {'nodes': len(nodes[op]), 'us_per_run': round(per_op[op] / runs, 2)}
            for op in sorted(per_op, key=per_op.get, reverse=True)}


def _time_calls(session, feeds, calls):
    """Return the wall times (s) of ``calls`` runs of ``session``."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return times


def compare(paths, feeds, threads, runs, rounds=10):
    """Return {name: median ms} of sessions run alternately; ``paths``/``feeds`` by name."""
    sessions = {name: make_session(path, threads) for name, path in paths.items()}
    times = {name: [] for name in paths}
    for name, session in sessions.items():
        _time_calls(session, feeds[name], 20)
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, session in sessions.items():
            times[name] += _time_calls(session, feeds[name], per_round)
    return {name: round(1e3 * float(np.median(t)), 4) for name, t in times.items()}


def speed(root, lifting_path, variants, threads_list, batches, runs):
    """Return rows of {variant, threads, batch, landmark_ms, mesh_ms, lifting_ms, ratio}."""
    rows = []
    for variant in variants:
        landmark = root / ('hand_landmark_%s.onnx' % variant)
        mesh = root / ('hand_mesh_%s.onnx' % variant)
        if not (landmark.is_file() and mesh.is_file()):
            continue
        for threads in threads_list:
            for batch in batches:
                crop = np.random.default_rng(batch).uniform(
                    size=(batch, 224, 224, 3)).astype(np.float32)
                paths = {'landmark': landmark, 'mesh': mesh, 'lifting': lifting_path}
                feeds = {'landmark': {'input_1': crop}, 'mesh': {'input_1': crop},
                         'lifting': {LIFTING_INPUT: world_landmarks(batch)}}
                ms = compare(paths, feeds, threads, runs)
                rows.append({'variant': variant, 'threads': threads, 'batch': batch,
                             'landmark_ms': ms['landmark'], 'mesh_ms': ms['mesh'],
                             'lifting_ms': ms['lifting'],
                             'ratio': round(ms['mesh'] / ms['landmark'], 3)})
    return rows


def main(argv=None):
    """Measure and print; return an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models-dir', type=Path, default=None)
    parser.add_argument('--lifting', type=Path, default=None,
                        help='lifting graph (default: MODELS_DIR/lifting_skinning_learned.onnx)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--batch', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--runs', type=int, default=300, help='timed calls per network')
    parser.add_argument('--profile', action='store_true', help='per-op-type profile')
    parser.add_argument('--no-speed', action='store_true', help='skip the timing')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    if args.runs < 10 or min(args.threads) < 1 or min(args.batch) < 1:
        parser.error('--runs must be >= 10, --threads and --batch >= 1')
    root = args.models_dir or models_dir()
    lifting = args.lifting or root / 'lifting_skinning_learned.onnx'
    result = {'lifting': os.fspath(lifting), 'nodes': node_counts(lifting)}
    print('lifting graph %s: %d nodes stored, %d after ORT_ENABLE_ALL'
          % (lifting.name, result['nodes']['stored'], result['nodes']['optimized']))
    if args.profile:
        result['profile'] = profile_ops(lifting)
        total = sum(row['us_per_run'] for row in result['profile'].values())
        print('profile (batch 1, 1 thread): %.1f us per run in kernels' % total)
        for op, row in result['profile'].items():
            print('  %-18s %4d nodes %8.2f us' % (op, row['nodes'], row['us_per_run']))
    if not args.no_speed:
        result['speed'] = speed(root, lifting, args.variants, args.threads, args.batch,
                                args.runs)
        for row in result['speed']:
            print('%(variant)s threads %(threads)d batch %(batch)d: landmark %(landmark_ms).3f '
                  'ms, mesh %(mesh_ms).3f ms, ratio %(ratio).3f; lifting alone '
                  '%(lifting_ms).3f ms' % row)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
