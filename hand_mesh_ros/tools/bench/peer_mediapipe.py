"""Time MediaPipe's own Python hand pipeline on a video (the benchmark's peer).

Runs under a *different* interpreter, in a throwaway virtual environment that has
``mediapipe==0.10.14`` installed (the product never depends on it)::

    python3 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.14 'numpy<2'
    hand-mesh bench --mediapipe-python /tmp/mp/bin/python

This file imports only the standard library, numpy, OpenCV and mediapipe, so it can run as
a plain script there. It prints one JSON object: per-frame milliseconds of
``solutions.hands.Hands`` (full model, tracking mode, ``--max-hands`` hands, default 2) on
the frames given. MediaPipe runs its palm detector on every frame while it tracks fewer than
``max_num_hands`` hands: with 2 and one hand in view, that is every frame; with 1, only
until the hand is found (and again when it is lost).
"""

import argparse
import json
import statistics
import time


def main(argv=None):
    """Time mediapipe.solutions.hands on a video; print a JSON summary."""
    import cv2
    import mediapipe as mp

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('video')
    parser.add_argument('--max-hands', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--max-frames', type=int, default=0, help='0 = every frame')
    args = parser.parse_args(argv)

    capture = cv2.VideoCapture(args.video)
    frames = []
    while not args.max_frames or len(frames) < args.max_frames:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    times_ms = []
    detected = 0
    for _ in range(args.repeats):
        with mp.solutions.hands.Hands(static_image_mode=False, model_complexity=1,
                                      max_num_hands=args.max_hands,
                                      min_detection_confidence=0.5,
                                      min_tracking_confidence=0.5) as hands:
            detected = 0
            for rgb in frames:
                start = time.perf_counter()
                result = hands.process(rgb)
                times_ms.append((time.perf_counter() - start) * 1e3)
                detected += bool(result.multi_hand_landmarks)
    print(json.dumps({
        'peer': 'mediapipe %s solutions.hands (full, tracking)' % mp.__version__,
        'max_num_hands': args.max_hands,
        'frames': len(frames) * args.repeats,
        'frames_with_hand': detected,
        'median_ms': statistics.median(times_ms),
        'mean_ms': statistics.fmean(times_ms),
        'p95_ms': sorted(times_ms)[int(0.95 * (len(times_ms) - 1))],
    }))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
