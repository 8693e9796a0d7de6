"""Time the tailor (or root recovery) alone on recorded inputs.

``python -m hand_mesh_ros.tools.bench.bench_tailor [--stage tailor|root]``

1. ``--record`` runs the pipeline once on the sample video (tracking mode, default
   configuration) and stores the arguments of every :meth:`HandTailor.refine` and
   :func:`recover_root` call (pickle, ``--inputs FILE``).
2. Replay (default; recorded first when the file does not exist): a fresh tailor of the
   same configuration refines the recorded hands in order, ``--passes`` times (its track
   state evolves as in the pipeline), and prints the median milliseconds per call of every
   pass, the median of those, the mean iterations and the converged share. With
   ``--stage root`` the recorded root recoveries are replayed instead.
   ``--profile N`` prints the N most expensive functions (cProfile, cumulative) of one
   extra pass.

For an A/B comparison on a noisy machine, replay the same FILE with two source trees in
alternation (``PYTHONPATH=<tree> python -m hand_mesh_ros.tools.bench.bench_tailor --inputs FILE``)
and compare the medians. The last line is one JSON object.
"""

import argparse
import cProfile
import io
import json
from pathlib import Path
import pickle
import pstats
import time

import numpy as np

from hand_mesh_ros.paths import data_dir


def record_calls(video, out_path, max_frames=None):
    """Run the pipeline on ``video``; pickle the tailor's config and refine calls to a file."""
    from hand_mesh_ros.core import hand_estimation
    from hand_mesh_ros.core import pipeline as pipeline_module
    from hand_mesh_ros.core.types import Frame
    from hand_mesh_ros.tools.video_frames import iter_frames
    pipeline = pipeline_module.HandMeshPipeline(None)
    calls, root_calls = [], []
    refine = pipeline.tailor.refine
    recover_root = hand_estimation.recover_root

    def recording(*args, **kwargs):
        calls.append(pickle.dumps((args, kwargs)))
        return refine(*args, **kwargs)

    def recording_root(*args, **kwargs):
        root_calls.append(pickle.dumps((args, kwargs)))
        return recover_root(*args, **kwargs)

    pipeline.tailor.refine = recording
    hand_estimation.recover_root = recording_root
    try:
        for _, stamp_ns, rgb in iter_frames(video, max_frames=max_frames):
            pipeline.process(Frame(rgb, stamp_ns, 'camera', None))
            if pipeline.tailor.refine is not recording:  # a reconfiguration: a new tailor
                raise RuntimeError('the pipeline replaced its tailor while recording')
    finally:
        hand_estimation.recover_root = recover_root
    record = {'config': pipeline.config.tailor, 'calls': calls, 'root_calls': root_calls,
              'model': pipeline.hand_model}
    pipeline.close()
    Path(out_path).write_bytes(pickle.dumps(record))
    return len(calls)


def replay(record, passes, profile_top=0, stage='tailor'):
    """Return per-pass medians (ms per call), iterations and converged share of a record."""
    from hand_mesh_ros.core.errors import HandMeshError
    from hand_mesh_ros.core.fitting.root_recovery import recover_root
    from hand_mesh_ros.core.fitting.tailor import HandTailor
    key = 'root_calls' if stage == 'root' else 'calls'
    # Each call is unpickled afresh per pass: its Track argument holds the fit state of
    # the recording at that call, so every call replays from the recorded state.
    calls = record[key]
    tailor = HandTailor(record['model'], record['config'])
    function = recover_root if stage == 'root' else tailor.refine
    medians, iterations, converged, failed = [], [], [], 0

    def one_pass(collect):
        nonlocal failed
        times_ms = []
        for call in calls:
            args, kwargs = pickle.loads(call)
            start = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except HandMeshError:
                failed += collect
                continue
            times_ms.append((time.perf_counter() - start) * 1e3)
            if collect:
                iterations.append(result.iterations)
                converged.append(result.converged)
        return float(np.median(times_ms))

    one_pass(True)  # warm-up, and the iteration figures
    for _ in range(passes):
        medians.append(one_pass(False))
    profile_text = ''
    if profile_top:
        profiler = cProfile.Profile()
        profiler.enable()
        one_pass(False)
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats('tottime').print_stats(profile_top)
        profile_text = stream.getvalue()
    return {'calls': len(calls), 'pass_medians_ms': [round(m, 4) for m in medians],
            'median_ms': round(float(np.median(medians)), 4),
            'mean_iterations': round(float(np.mean(iterations)), 3),
            'converged_share': round(float(np.mean(converged)), 4), 'failed': failed,
            'profile': profile_text}


def main(argv=None):
    """Record the tailor's inputs if needed, replay them and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--inputs', default='out/bench_tailor_calls.pkl',
                        help='recorded refine calls (recorded first when missing)')
    parser.add_argument('--record', action='store_true', help='re-record even if present')
    parser.add_argument('--video', default=str(data_dir() / 'asl_hand.25fps.mp4'))
    parser.add_argument('--max-frames', type=int, default=None)
    parser.add_argument('--passes', type=int, default=5)
    parser.add_argument('--stage', choices=('tailor', 'root'), default='tailor')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the N functions with most own time of one pass')
    parser.add_argument('--json', action='store_true', help='only the JSON line')
    args = parser.parse_args(argv)
    path = Path(args.inputs)
    if args.record or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        count = record_calls(args.video, path, args.max_frames)
        if not args.json:
            print('recorded %d refine calls (and the root recoveries) to %s' % (count, path))
    result = replay(pickle.loads(path.read_bytes()), args.passes, args.profile, args.stage)
    profile = result.pop('profile')
    if not args.json:
        if profile:
            print(profile)
        print(args.stage + ' per call: median %.3f ms over %d passes of %d calls (%s); '
              'iterations %.2f, converged %.1f %%'
              % (result['median_ms'], args.passes, result['calls'],
                 ', '.join('%.3f' % m for m in result['pass_medians_ms']),
                 result['mean_iterations'], 100.0 * result['converged_share']))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
