"""MediaPipe's own hands on still images: the 2D reference of the hard-hand images.

Runs under a *different* interpreter, in a throwaway virtual environment that has
``mediapipe==0.10.14`` installed (the product never depends on it)::

    python3.11 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.14
    /tmp/mp/bin/python mediapipe_reference.py IMAGE... > reference.json

This file imports only the standard library, numpy, OpenCV and mediapipe, so it runs as a
plain script there (``data/README.md`` has the exact commands). ``solutions.hands.Hands``
(full model, static images, up to two hands, detection confidence 0.5) runs on every image;
printed: one JSON object ``{file name: [{'side', 'score', 'keypoints_px' (21 x [u, v]),
'world_m' (21 x [x, y, z])}, ...]}`` (side as MediaPipe labels it for a non-mirrored
image).
"""

import argparse
import json
from pathlib import Path


def main(argv=None):
    """Print MediaPipe's hands of every image as one JSON object."""
    import cv2
    import mediapipe as mp

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='+')
    args = parser.parse_args(argv)
    out = {}
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2,
                                  model_complexity=1,
                                  min_detection_confidence=0.5) as hands:
        for path in args.images:
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            height, width = bgr.shape[:2]
            found = hands.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            rows = []
            for image_lm, world_lm, label in zip(found.multi_hand_landmarks or (),
                                                 found.multi_hand_world_landmarks or (),
                                                 found.multi_handedness or ()):
                rows.append({
                    'side': label.classification[0].label.lower(),
                    'score': round(float(label.classification[0].score), 4),
                    'keypoints_px': [[round(p.x * width, 2), round(p.y * height, 2)]
                                     for p in image_lm.landmark],
                    'world_m': [[round(p.x, 5), round(p.y, 5), round(p.z, 5)]
                                for p in world_lm.landmark]})
            out[Path(path).name] = rows
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
