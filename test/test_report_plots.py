"""The report's PNG plots from a hand-made report, and the tick helper."""

import cv2
import numpy as np

from hand_mesh_ros.tools.evaluation import plots


def test_nice_ticks_by_hand():
    assert plots.nice_ticks(0.0, 10.0) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert plots.nice_ticks(0.3, 1.7) == [0.0, 0.5, 1.0, 1.5, 2.0]   # step 0.28 -> 0.5
    assert plots.nice_ticks(-3.0, 41.0, count=5) == [-20.0, 0.0, 20.0, 40.0, 60.0]  # step 20
    assert plots.nice_ticks(5.0, 5.0) == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


def hand_made_report():
    frames = 40
    errors = list(np.linspace(1.0, 3.0, frames))
    thresholds = list(np.linspace(0.0, 20.0, 41))
    curve = list(np.clip(np.array(thresholds) / 5.0, 0.0, 1.0))
    run = {'pck': {'curve_thresholds_px': thresholds, 'curve': curve},
           'acc_per_frame_mm': list(np.abs(np.sin(np.arange(frames - 2))) * 5.0)}
    video = {'frames': frames, 'median_frame_ms': 20.0, 'mean_frame_ms': 21.0,
             'error_px_per_frame': {'network': errors, 'refined': errors,
                                    'per_frame': [np.nan] * 3 + errors[3:]},
             'pck': {'network': {'curve_thresholds_px': thresholds, 'curve': curve}},
             'per_frame': run, 'refined': dict(run, acc_per_frame_mm=[0.5] * (frames - 2)),
             'mean_stage_ms': {'landmark_infer': 12.0, 'tailor': 3.0, 'palm_infer': 0.0,
                               'detect_track_total': 13.0}}
    cells = [{'noise_px': n, 'distance_m': d,
              'full_intrinsics': {'median_mm': 5.0 * n * d, 'p90_mm': 1.0, 'failures': 0},
              'fixed_focal': {'median_mm': 1e4, 'p90_mm': 1.0, 'failures': 0}}
             for n in (0.5, 1.0, 2.0) for d in (0.3, 0.6, 1.0)]
    root = {'methods': ['full_intrinsics', 'fixed_focal'], 'noise_px': [0.5, 1.0, 2.0],
            'distance_m': [0.3, 0.6, 1.0], 'n_trials': 5, 'cells': cells}
    return {'video': video, 'root': root}


def test_render_plots_writes_every_png(tmp_path):
    paths = plots.render_plots(hand_made_report(), tmp_path)
    assert sorted(paths) == ['accel_histogram', 'error_over_time', 'pck_curve',
                             'root_error_vs_distance', 'root_error_vs_noise', 'stage_latency']
    for name, path in paths.items():
        image = cv2.imread(str(path))
        assert image is not None and image.shape[1] == plots.SIZE[0], name
        # Something besides white, grey and black was drawn (the coloured series).
        colourful = np.ptp(image.astype(int), axis=2) > 60
        assert colourful.mean() > 0.002, name


def test_render_plots_skips_missing_sections(tmp_path):
    report = hand_made_report()
    del report['video']
    assert sorted(plots.render_plots(report, tmp_path)) == ['root_error_vs_distance',
                                                            'root_error_vs_noise']
    assert not (tmp_path / 'error_over_time.png').exists()
