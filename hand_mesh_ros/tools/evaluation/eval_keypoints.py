"""``hand-mesh eval keypoints``: 2D keypoint accuracy of detection + tracking on real data.

On ``hands.jpg`` (two hands) it reports how many hands were found and the mean pixel error
against MediaPipe's golden keypoints (hands matched by the Hungarian method); on the ASL video
(325 frames, one hand) it runs the tracker frame by frame and reports the detection rate and
the median pixel error against the golden per-frame keypoints, with per-stage timings. The
references are MediaPipe Hands (full model) outputs, not human annotation.
"""

import json
from pathlib import Path
import sys
import time

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from hand_mesh_ros.core.tracking.hand_tracking import HandTracker, STAGES
from hand_mesh_ros.paths import data_dir, models_dir as default_models_dir
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser

SAMPLE_PHOTO = 'hands.jpg'
SAMPLE_PHOTO_EXPECTED = 'hands_expected_keypoints.json'
SAMPLE_VIDEO = 'asl_hand.25fps.mp4'
SAMPLE_VIDEO_EXPECTED = 'asl_hand.full.json'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def create_tracker(models_dir=None, variant='full', backend='onnxruntime', num_threads=2,
                   **tracker_kwargs):
    """Return a :class:`HandTracker` on the ONNX palm and landmark models of ``variant``."""
    from hand_mesh_ros.inference import create_session
    if variant not in ('full', 'lite'):
        raise ValueError("variant must be 'full' or 'lite', got %r" % (variant,))
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    sessions = []
    for name in ('palm_detection', 'hand_landmark'):
        path = root / ('%s_%s.onnx' % (name, variant))
        if not path.is_file():
            raise FileNotFoundError('%s is missing; run `hand-mesh setup-models` first' % path)
        sessions.append(create_session(str(path), backend=backend, num_threads=num_threads))
    return HandTracker(sessions[0], sessions[1], **tracker_kwargs)


def match_hands(found_px, expected_px):
    """Match found to expected hands by mean keypoint distance (Hungarian method).

    found_px: list of (21, 2); expected_px: list of (21, 2). Returns ``[(found_i, expected_j,
    mean_error_px)]`` for the matched pairs.
    """
    if not found_px or not expected_px:
        return []
    cost = np.array([[float(np.linalg.norm(f - e, axis=1).mean()) for e in expected_px]
                     for f in found_px])
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c), float(cost[r, c])) for r, c in zip(rows, cols)]


def read_rgb(path):
    """Read an image file as (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError('cannot read image %s' % path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def evaluate_photo(tracker, image_path, expected=None):
    """Run ``tracker`` on one image; return hands found, sides and errors vs ``expected``.

    expected: list of (21, 2) arrays (raw-image px) or None.
    """
    tracker.reset()
    hands = tracker.process(read_rgb(image_path), 0.0)
    result = {'image': Path(image_path).name, 'hands_found': len(hands),
              'sides': [hand.side for hand in hands],
              'handedness_scores': [round(hand.handedness_score, 4) for hand in hands]}
    if expected is not None:
        pairs = match_hands([hand.keypoints_px for hand in hands], expected)
        errors = [err for _, _, err in pairs]
        result.update({'hands_expected': len(expected),
                       'per_hand_mean_px_error': [round(e, 3) for e in errors],
                       'mean_px_error': float(np.mean(errors)) if errors else None})
    return result


def evaluate_video(tracker, video_path, expected=None, max_frames=None):
    """Track hands through a video; return detection rate, errors and per-stage timings.

    expected: per-frame list of (21, >=2) golden keypoints (one hand per frame) or None.
    Timestamps come from the frame index and the file's frame rate.
    """
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        raise FileNotFoundError('cannot open video %s' % video_path)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    tracker.reset()
    runs_before = tracker.detector_runs
    errors, with_hand, frames, track_ids = [], 0, 0, set()
    timings = {stage: [] for stage in STAGES}
    wall_ms, palm_run_ms = [], []
    try:
        while max_frames is None or frames < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            start = time.perf_counter()
            hands, stage_ms = tracker.track(rgb, frames / fps)
            wall_ms.append(1e3 * (time.perf_counter() - start))
            for stage in STAGES:
                timings[stage].append(stage_ms[stage])
            if stage_ms['palm_infer'] > 0.0:
                palm_run_ms.append((stage_ms['palm_pre_post'], stage_ms['palm_infer']))
            with_hand += bool(hands)
            track_ids.update(hand.track_id for hand in hands)
            if expected is not None and hands and frames < len(expected):
                gold = np.asarray(expected[frames], dtype=np.float64)[:, :2]
                errors.append(min(float(np.linalg.norm(h.keypoints_px - gold, axis=1).mean())
                                  for h in hands))
            frames += 1
    finally:
        capture.release()
    result = {'video': Path(video_path).name, 'frames': frames, 'frames_with_hand': with_hand,
              'detection_rate': with_hand / frames if frames else 0.0,
              'track_ids': sorted(track_ids),
              'detector_runs': tracker.detector_runs - runs_before,
              'median_stage_ms': {s: round(float(np.median(v)), 3) for s, v in timings.items()},
              'mean_stage_ms': {s: round(float(np.mean(v)), 3) for s, v in timings.items()},
              'median_frame_ms': round(float(np.median(wall_ms)), 3) if wall_ms else None,
              'median_palm_ms_when_run': (
                  {'palm_pre_post': round(float(np.median([p for p, _ in palm_run_ms])), 3),
                   'palm_infer': round(float(np.median([i for _, i in palm_run_ms])), 3)}
                  if palm_run_ms else None)}
    if expected is not None:
        result.update({
            'frames_expected': len(expected),
            'median_px_error': float(np.median(errors)) if errors else None,
            'mean_px_error': float(np.mean(errors)) if errors else None,
            'p95_px_error': float(np.percentile(errors, 95)) if errors else None})
    return result


def _load_expected(path):
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        return [np.asarray(hand, dtype=np.float64) for hand in data['hands']]
    return data


def _default_expected(input_path):
    name = Path(input_path).name
    folder = Path(input_path).parent
    for sample, golden in ((SAMPLE_PHOTO, SAMPLE_PHOTO_EXPECTED),
                           (SAMPLE_VIDEO, SAMPLE_VIDEO_EXPECTED)):
        if name == sample and (folder / golden).is_file():
            return folder / golden
    return None


def evaluate_keypoints(models_dir=None, variant='full', input_path=None, expected_path=None,
                       include_photo=True, max_frames=None, backend='onnxruntime',
                       num_threads=2, **tracker_kwargs):
    """Evaluate one model variant; return a dict of figures.

    With ``input_path`` None the sample video is evaluated in tracking mode (top-level
    ``detection_rate`` and ``median_px_error``) and, if ``include_photo``, the sample photo
    under ``'photo'``. An image input gives the photo figures at the top level.
    """
    tracker = create_tracker(models_dir, variant, backend=backend, num_threads=num_threads,
                             **tracker_kwargs)
    inputs = [Path(input_path)] if input_path is not None else [data_dir() / SAMPLE_VIDEO]
    if input_path is None and include_photo:
        inputs.append(data_dir() / SAMPLE_PHOTO)
    result = {'variant': variant, 'max_hands': tracker.max_hands,
              'detect_interval': tracker.detect_interval}
    for index, path in enumerate(inputs):
        golden = expected_path if (index == 0 and expected_path) else _default_expected(path)
        expected = _load_expected(golden) if golden is not None else None
        if path.suffix.lower() in IMAGE_SUFFIXES:
            figures = evaluate_photo(tracker, path, expected)
        else:
            figures = evaluate_video(tracker, path, expected, max_frames=max_frames)
        if index == 0:
            result.update(figures)
        else:
            result['photo'] = figures
    return result


def _summary_lines(result):
    lines = []
    for figures in (result, result.get('photo')):
        if not figures:
            continue
        if 'video' in figures:
            lines.append('[%s] %s: hand in %d/%d frames, median error %s px, detector ran %d '
                         'times, track ids %s' % (
                             result['variant'], figures['video'], figures['frames_with_hand'],
                             figures['frames'], _fmt(figures.get('median_px_error')),
                             figures['detector_runs'], figures['track_ids']))
            lines.append('[%s] median ms per stage: %s' % (result['variant'], ', '.join(
                '%s %.2f' % item for item in figures['median_stage_ms'].items())))
        elif 'image' in figures:
            lines.append('[%s] %s: %d hands %s, mean error %s px' % (
                result['variant'], figures['image'], figures['hands_found'], figures['sides'],
                _fmt(figures.get('mean_px_error'))))
    return lines


def _fmt(value):
    return 'n/a' if value is None else '%.2f' % value


def main(argv=None):
    """Run ``hand-mesh eval keypoints [INPUT] [--variant ...] [--json]``; return exit code."""
    parser = figures_parser('hand-mesh eval keypoints', __doc__)
    parser.add_argument('input', nargs='?', default=None,
                        help='image or video (default: the sample video, plus the photo)')
    parser.add_argument('--expected', default=None, help='golden keypoints JSON for INPUT')
    parser.add_argument('--variant', choices=('full', 'lite', 'both'), default='full',
                        help='network size(s) to evaluate (default: full)')
    parser.add_argument('--models-dir', default=None, help='default: %s' % default_models_dir())
    parser.add_argument('--backend', default='onnxruntime',
                        choices=('auto', 'onnxruntime', 'tensorrt'),
                        help='inference backend (default: onnxruntime)')
    parser.add_argument('--threads', type=int, default=2, help='ONNX Runtime threads')
    parser.add_argument('--max-hands', type=int, default=2,
                        help='most hands tracked at once, as detection.max_hands')
    parser.add_argument('--detect-interval', type=int, default=10,
                        help='frames between palm-detector runs while hands are missing')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='use the first N video frames (default: all)')
    args = parser.parse_args(argv)
    variants = ('full', 'lite') if args.variant == 'both' else (args.variant,)
    results = {}
    try:
        for variant in variants:
            results[variant] = evaluate_keypoints(
                args.models_dir, variant, args.input, args.expected, max_frames=args.max_frames,
                backend=args.backend, num_threads=args.threads, max_hands=args.max_hands,
                detect_interval=args.detect_interval)
    except (FileNotFoundError, ValueError) as exc:
        print('hand-mesh eval keypoints: %s' % exc, file=sys.stderr)
        return 1
    for result in results.values():
        print('\n'.join(_summary_lines(result)))
    if args.json:
        output = dict(results[variants[0]])
        if len(variants) > 1:
            output['variants'] = results
        print(json.dumps(output, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
