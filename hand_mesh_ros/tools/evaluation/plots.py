"""Small PNG charts drawn with OpenCV: line plots, overlaid histograms, horizontal bars.

matplotlib is not a dependency of the package; these charts (axes with "nice" ticks, optional
log scale, legend, title) are enough for the evaluation report. Every function writes one
PNG and returns its path.
"""

import math
from pathlib import Path

import cv2
import numpy as np

#: Series colours (RGB), colour-blind friendly (Okabe-Ito).
COLOURS = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
           (86, 180, 233), (0, 0, 0))
FONT = cv2.FONT_HERSHEY_SIMPLEX
SIZE = (960, 540)
MARGINS = (90, 30, 60, 70)   # left, right, top, bottom (px)


def nice_ticks(low, high, count=6):
    """Return ~``count`` round tick values covering [low, high] (steps of 1, 2 or 5 x 10^k)."""
    if not np.isfinite(low) or not np.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _label(value):
    if value == 0:
        return '0'
    if abs(value) >= 1000 or abs(value) < 0.01:
        return '%.0e' % value
    return ('%.2f' % value).rstrip('0').rstrip('.')


class Axes:
    """A white canvas with one plotting area; data -> pixel mapping, linear or log y."""

    def __init__(self, x_range, y_range, log_y=False, size=SIZE):
        """Create the canvas for data in ``x_range`` x ``y_range``."""
        self.width, self.height = size
        self.image = np.full((self.height, self.width, 3), 255, np.uint8)
        left, right, top, bottom = MARGINS
        self.box = (left, top, self.width - right, self.height - bottom)
        self.log_y = log_y
        if log_y:
            lo = math.floor(math.log10(max(y_range[0], 1e-9)))
            hi = math.ceil(math.log10(max(y_range[1], 10.0 ** (lo + 1))))
            self.y_ticks = [10.0 ** e for e in range(lo, hi + 1)]
        else:
            self.y_ticks = nice_ticks(*y_range)
        self.x_ticks = nice_ticks(*x_range)
        self.x_range = (min(self.x_ticks[0], x_range[0]), max(self.x_ticks[-1], x_range[1]))
        self.y_range = (self.y_ticks[0], self.y_ticks[-1])

    def _y(self, values):
        values = np.asarray(values, dtype=np.float64)
        lo, hi = self.y_range
        if self.log_y:
            values, lo, hi = np.log10(np.maximum(values, 1e-12)), math.log10(lo), math.log10(hi)
        frac = (values - lo) / max(hi - lo, 1e-12)
        return self.box[3] - frac * (self.box[3] - self.box[1])

    def _x(self, values):
        values = np.asarray(values, dtype=np.float64)
        lo, hi = self.x_range
        return self.box[0] + (values - lo) / max(hi - lo, 1e-12) * (self.box[2] - self.box[0])

    def to_px(self, xs, ys):
        """Return (N, 2) int32 pixel positions of data points."""
        return np.stack([self._x(xs), self._y(ys)], axis=1).round().astype(np.int32)

    def text(self, text, org, scale=0.5, colour=(40, 40, 40), thickness=1):
        """Write ``text`` at ``org`` (RGB colour)."""
        cv2.putText(self.image, str(text), (int(org[0]), int(org[1])), FONT, scale, colour,
                    thickness, cv2.LINE_AA)

    def frame(self, title, xlabel, ylabel, x_tick_labels=None):
        """Draw grid, ticks, axis labels and the title."""
        x0, y0, x1, y1 = self.box
        for tick in self.y_ticks:
            y = int(round(float(self._y(tick))))
            cv2.line(self.image, (x0, y), (x1, y), (225, 225, 225), 1)
            label = _label(tick)
            self.text(label, (x0 - 10 - 9 * len(label), y + 5))
        if x_tick_labels is None:
            for tick in self.x_ticks:
                x = int(round(float(self._x(tick))))
                cv2.line(self.image, (x, y0), (x, y1), (235, 235, 235), 1)
                label = _label(tick)
                self.text(label, (x - 4 * len(label), y1 + 20))
        cv2.rectangle(self.image, (x0, y0), (x1, y1), (90, 90, 90), 1)
        self.text(title, (x0, y0 - 22), 0.65, (0, 0, 0), 2)
        self.text(xlabel, ((x0 + x1) // 2 - 4 * len(xlabel), self.height - 18), 0.55)
        rotated = np.full((24, 9 * len(ylabel) + 10, 3), 255, np.uint8)
        cv2.putText(rotated, ylabel, (4, 17), FONT, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
        rotated = cv2.rotate(rotated, cv2.ROTATE_90_COUNTERCLOCKWISE)
        top = max(0, (y0 + y1) // 2 - rotated.shape[0] // 2)
        h = min(rotated.shape[0], self.height - top)
        self.image[top:top + h, 8:8 + rotated.shape[1]] = rotated[:h]

    def legend(self, labels, lower=False):
        """Draw a legend box in the upper (or lower) right corner of the plotting area."""
        if not labels:
            return
        width = 30 + 9 * max(len(label) for label in labels)
        x1, y0 = self.box[2] - 10, self.box[1] + 10
        if lower:
            y0 = self.box[3] - 16 - 22 * len(labels)
        x0 = x1 - width
        cv2.rectangle(self.image, (x0, y0), (x1, y0 + 22 * len(labels) + 6), (255, 255, 255),
                      -1)
        cv2.rectangle(self.image, (x0, y0), (x1, y0 + 22 * len(labels) + 6), (160, 160, 160), 1)
        for i, label in enumerate(labels):
            y = y0 + 18 + 22 * i
            cv2.line(self.image, (x0 + 6, y - 5), (x0 + 22, y - 5), COLOURS[i % len(COLOURS)], 3)
            self.text(label, (x0 + 27, y))

    def save(self, path):
        """Write the PNG; return its Path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR)):
            raise OSError('cannot write %s' % path)
        return path


def line_plot(path, series, title, xlabel, ylabel, log_y=False, markers=False,
              legend_lower=False):
    """Plot ``series`` = [(label, xs, ys)] as lines (NaN values break a line); save a PNG."""
    finite = [np.asarray(ys, dtype=np.float64) for _, _, ys in series]
    finite = np.concatenate([v[np.isfinite(v)] for v in finite] + [np.zeros(0)])
    xs_all = np.concatenate([np.asarray(xs, dtype=np.float64) for _, xs, _ in series])
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    axes = Axes((float(xs_all.min()), float(xs_all.max())),
                (low if log_y else min(0.0, low), high), log_y=log_y)
    axes.frame(title, xlabel, ylabel)
    for i, (_, xs, ys) in enumerate(series):
        ys = np.asarray(ys, dtype=np.float64)
        ok = np.isfinite(ys) & ((ys > 0) if log_y else True)
        pts = axes.to_px(np.asarray(xs, dtype=np.float64), np.where(ok, ys, 1.0))
        colour = COLOURS[i % len(COLOURS)]
        runs = np.split(np.arange(len(ys)), np.where(~ok)[0])
        for run in runs:
            run = run[ok[run]]
            if len(run) > 1:
                cv2.polylines(axes.image, [pts[run]], False, colour, 2, cv2.LINE_AA)
            if markers or len(run) == 1:
                for p in pts[run]:
                    cv2.circle(axes.image, tuple(int(v) for v in p), 4, colour, -1, cv2.LINE_AA)
    axes.legend([label for label, _, _ in series], lower=legend_lower)
    return axes.save(path)


def histogram_plot(path, groups, bins, title, xlabel, ylabel='fraction of frames'):
    """Plot overlaid normalised histograms of ``groups`` = [(label, values)]; save a PNG.

    Values outside ``bins`` are counted in the first / last bin.
    """
    bins = np.asarray(bins, dtype=np.float64)
    fractions = []
    for _, values in groups:
        values = np.clip(np.asarray(values, dtype=np.float64), bins[0], bins[-1])
        counts, _ = np.histogram(values, bins=bins)
        fractions.append(counts / max(len(values), 1))
    axes = Axes((bins[0], bins[-1]), (0.0, max(float(np.max(fractions)), 1e-3)))
    axes.frame(title, xlabel, ylabel)
    for i, fraction in enumerate(fractions):
        colour = COLOURS[i % len(COLOURS)]
        overlay = axes.image.copy()
        outline = []
        for lo, hi, f in zip(bins[:-1], bins[1:], fraction):
            (xa, ya), (xb, yb) = axes.to_px([lo, hi], [f, 0.0])
            cv2.rectangle(overlay, (int(xa), int(ya)), (int(xb), int(yb)), colour, -1)
            outline += [(xa, ya), (xb, ya)]
        cv2.addWeighted(overlay, 0.25, axes.image, 0.75, 0.0, dst=axes.image)
        cv2.polylines(axes.image, [np.array(outline, np.int32)], False, colour, 2, cv2.LINE_AA)
    axes.legend([label for label, _ in groups])
    return axes.save(path)


def bar_plot(path, labels, values, title, xlabel, total_last=False):
    """Plot horizontal bars (one per label, value written at its end); save a PNG.

    With ``total_last`` the last bar (a total) is grey.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    size = (SIZE[0], max(SIZE[1], 120 + 34 * n))
    axes = Axes((0.0, max(float(values.max()) * 1.12, 1e-3)), (0.0, float(n)), size=size)
    left = MARGINS[0] + 110
    axes.box = (left,) + axes.box[1:]
    axes.y_ticks = []
    axes.frame(title, xlabel, '')
    for i, (label, value) in enumerate(zip(labels, values)):
        (xa, ya), (xb, yb) = axes.to_px([0.0, value], [n - i - 0.2, n - i - 0.8])
        colour = (120, 120, 120) if i == n - 1 and total_last else COLOURS[i % len(COLOURS)]
        cv2.rectangle(axes.image, (int(xa), int(ya)), (int(xb), int(yb)), colour, -1)
        axes.text(label, (12, (ya + yb) // 2 + 5))
        axes.text('%.2f' % value, (xb + 6, (ya + yb) // 2 + 5))
    return axes.save(path)


def _root_series(table, key, fixed_key, fixed_value):
    """Return [(method, xs, median mm)] of the root table along ``key`` at a fixed other axis."""
    cells = [c for c in table['cells'] if abs(c[fixed_key] - fixed_value) < 1e-9]
    xs = [c[key] for c in cells]
    series = []
    for method in table['methods']:
        ys = [c[method]['median_mm'] if c[method]['median_mm'] is not None else np.nan
              for c in cells]
        series.append((method, xs, ys))
    return series


def render_plots(report, out_dir):
    """Write the report's PNG plots into ``out_dir``; return {name: path}.

    Plots whose section is missing from ``report`` (failed or not run) are skipped.
    """
    out_dir = Path(out_dir)
    paths = {}
    if report.get('video'):
        paths.update(_video_plots(report['video'], out_dir))
    if report.get('root'):
        paths.update(_root_plots(report['root'], out_dir))
    return paths


def _video_plots(video, out_dir):
    """Write the ASL video's plots (errors, PCK, acceleration, latency); return {name: path}."""
    paths = {}
    errors = video['error_px_per_frame']
    frames = np.arange(video['frames'])
    paths['error_over_time'] = line_plot(
        out_dir / 'error_over_time.png',
        [('network keypoints', frames, errors['network']),
         ('refined model (temporal)', frames, errors['refined']),
         ('model, no temporal terms', frames, errors['per_frame'])],
        '2D error vs MediaPipe golden keypoints, ASL video', 'frame',
        'mean keypoint error (px)')
    curves = [(label, video['pck'][key]['curve_thresholds_px'], video['pck'][key]['curve'])
              for label, key in (('network keypoints', 'network'),)
              if video['pck'].get(key)]
    curves += [(label, video[key]['pck']['curve_thresholds_px'], video[key]['pck']['curve'])
               for label, key in (('refined model (temporal)', 'refined'),
                                  ('model, no temporal terms', 'per_frame'))
               if video[key].get('pck')]
    if curves:
        paths['pck_curve'] = line_plot(out_dir / 'pck_curve.png', curves,
                                       '2D PCK vs MediaPipe golden keypoints, ASL video',
                                       'threshold (px)', 'fraction of keypoints',
                                       legend_lower=True)
    groups = [(label, video[key]['acc_per_frame_mm'])
              for label, key in (('no temporal terms', 'per_frame'),
                                 ('refined (temporal)', 'refined'))
              if video[key].get('acc_per_frame_mm')]
    if groups:
        top = max(float(np.percentile(np.concatenate([g for _, g in groups]), 98)), 1.0)
        paths['accel_histogram'] = histogram_plot(
            out_dir / 'accel_histogram.png', groups, np.linspace(0.0, top, 31),
            'Joint acceleration per frame (MobRecon Acc), ASL video',
            'mean |x[t+1] - 2x[t] + x[t-1]| over 21 joints, mm/frame^2 (> %.1f: last bin)'
            % top)
    # Means, not medians: the palm detector runs on few frames, so its median is 0.
    stages = {k: v for k, v in video['mean_stage_ms'].items()
              if v > 0.0 and k != 'detect_track_total'}
    if stages:
        names = sorted(stages, key=stages.get, reverse=True)
        paths['stage_latency'] = bar_plot(
            out_dir / 'stage_latency.png', names + ['whole frame'],
            [stages[n] for n in names] + [video['mean_frame_ms']],
            'Mean per-stage latency per frame, ASL video', 'ms', total_last=True)
    return paths


def _root_plots(table, out_dir):
    """Write the root-error plots (vs noise, vs distance); return {name: path}."""
    paths = {}
    distance = 0.6 if 0.6 in table['distance_m'] else table['distance_m'][0]
    noise = 1.0 if 1.0 in table['noise_px'] else table['noise_px'][0]
    paths['root_error_vs_noise'] = line_plot(
        out_dir / 'root_error_vs_noise.png', _root_series(table, 'noise_px', 'distance_m',
                                                          distance),
        'Root error vs keypoint noise at %.1f m (median of %d trials)'
        % (distance, table['n_trials']), 'keypoint noise (px, std)', 'root error (mm)',
        log_y=True, markers=True)
    paths['root_error_vs_distance'] = line_plot(
        out_dir / 'root_error_vs_distance.png', _root_series(table, 'distance_m',
                                                             'noise_px', noise),
        'Root error vs distance at %.1f px noise (median of %d trials)'
        % (noise, table['n_trials']), 'distance (m)', 'root error (mm)',
        log_y=True, markers=True)
    return paths
