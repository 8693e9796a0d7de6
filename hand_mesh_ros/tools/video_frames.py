"""Read frames from a video file or an image folder (RGB uint8), with their stamps."""

from pathlib import Path

import cv2

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def iter_frames(path, fps=None, max_frames=None):
    """Yield (index, stamp_ns, rgb (H, W, 3) uint8) from a video file or an image folder.

    Stamps start at 0 and advance by 1 / fps (the video's own rate by default; 25 Hz for a
    folder without ``fps``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the video cannot be opened or the folder holds no images.

    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError('no such video or image folder: %s' % path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError('no images (%s) in %s' % (', '.join(IMAGE_SUFFIXES), path))
        period_ns = int(round(1e9 / (fps or 25.0)))
        for index, file in enumerate(files[:max_frames]):
            bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError('cannot read image %s' % file)
            yield index, index * period_ns, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError('cannot open video %s' % path)
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or 25.0
    period_ns = int(round(1e9 / rate))
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            yield index, index * period_ns, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def video_fps(path, default=25.0):
    """Return the frame rate of a video file (``default`` for folders or unknown rates)."""
    path = Path(path)
    if path.is_dir():
        return default
    capture = cv2.VideoCapture(str(path))
    rate = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return rate or default
