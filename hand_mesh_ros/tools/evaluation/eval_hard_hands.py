"""``hand-mesh eval hard-hands``: every hand MediaPipe finds in hard poses, we publish.

The images (``data/hard_hands``, see ``data/README.md``): real people making the "call"
gesture (thumb and little finger out of a fist), "four", "rock" (index and little finger
out of a fist) and other poses (pointing, thumbs down, fists), with MediaPipe's hands as
the 2D reference (made by :mod:`.mediapipe_reference`): ``mediapipe_reference.json`` on the
images, ``mediapipe_variants.json`` on every variant below (``--write-variants DIR`` writes
them as PNG files, named by :func:`variant_name`, for MediaPipe to run on).

Every image runs whole, padded (240 px left, 120 px top) and, for every MediaPipe hand, in
three close-ups made from it (the hand's 2D box grown 1.4x, cropped square and scaled to
:data:`CLOSE_UP_PX`): ``fill`` (the hand fills the frame), ``border`` (the same crop moved so
that the left 30 % of the hand's box is cut off by the image border) and ``occluded`` (the
fill crop with a grey bar over the top 35 % of the hand's box). The camera of the whole
image is the nominal 60 degree one, shifted with the padding; a close-up has the nominal
camera of its own image (a camera as close to the hand as the close-up looks: the crop's
transformed K would put the principal point far outside it). MediaPipe's keypoints map
through the same pixel transform as the image.

Per hand that MediaPipe finds in the variant image itself: ``published`` (one of our
hands has observed keypoints within :data:`MATCH_FRACTION` of the hand's 2D box diagonal,
mean, of MediaPipe's), else ``rejected`` (the frame's gate reasons) or ``not_detected``.
Reported per variant, with the published hands' shape source and reprojection error in
hand sizes, and how many hands of the whole image MediaPipe itself loses in the variant.
"""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel, nominal_focal_px
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation.eval_resolution import PixelMap

VARIANTS = ('whole', 'pad', 'fill', 'border', 'occluded')
CLOSE_UP_PX = 320
BOX_GROWTH = 1.4
PAD_PX = (240, 120)
BORDER_CUT = 0.3
OCCLUDED_TOP = 0.35
MATCH_FRACTION = 0.25
MIN_INSIDE = 15


def hard_hands_dir():
    """Return the directory of the hard-hand images."""
    return data_dir() / 'hard_hands'


def load_reference(name='mediapipe_reference.json'):
    """Return {image name: [MediaPipe hand dict]} (see :mod:`.mediapipe_reference`)."""
    return json.loads((hard_hands_dir() / name).read_text())


def variant_name(image_name, variant, index):
    """Return the file name of the ``index``-th image of ``variant`` made from an image."""
    return '%s__%s_%d.png' % (image_name.rsplit('.', 1)[0], variant, index)


def write_variants(out_dir):
    """Write every variant image (PNG, RGB as BGR) to ``out_dir``; return their count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for image_name, hands in sorted(load_reference().items()):
        if not hands:
            continue
        rgb = cv2.cvtColor(cv2.imread(str(hard_hands_dir() / image_name)), cv2.COLOR_BGR2RGB)
        for variant in VARIANTS:
            for index, (image, _, _) in enumerate(variant_images(rgb, hands, variant)):
                cv2.imwrite(str(out_dir / variant_name(image_name, variant, index)),
                            cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                count += 1
    return count


def nominal_camera(width, height):
    """Return the nominal 60 degree pinhole camera of a ``width`` x ``height`` image."""
    focal = nominal_focal_px(width)
    k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(width, height, 'plumb_bob', [0.0] * 5, k,
                                               np.eye(3).ravel(), np.zeros(12))


def _close_up(rgb, keypoints_px, shift_cut):
    """Return (image, PixelMap) of a square crop around the keypoints, scaled up."""
    low, high = keypoints_px.min(axis=0), keypoints_px.max(axis=0)
    side = BOX_GROWTH * float((high - low).max())
    corner = 0.5 * (low + high) - 0.5 * side
    if shift_cut:
        corner[0] = low[0] + BORDER_CUT * (high[0] - low[0])
    scale = CLOSE_UP_PX / side
    pmap = PixelMap(scale, tuple(scale * corner), (CLOSE_UP_PX, CLOSE_UP_PX))
    # The affine map of the pixels, applied to the image (constant border outside it).
    affine = np.array([[scale, 0.0, 0.5 * scale - 0.5 - pmap.offset_px[0]],
                       [0.0, scale, 0.5 * scale - 0.5 - pmap.offset_px[1]]])
    image = cv2.warpAffine(rgb, affine, pmap.size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    return image, pmap


def variant_images(rgb, hands, name):
    """Yield (image, PixelMap, [MediaPipe keypoints (21, 2) in it]) of variant ``name``."""
    height, width = rgb.shape[:2]
    references = [np.asarray(h['keypoints_px'], dtype=np.float64) for h in hands]
    if name == 'whole':
        yield rgb, PixelMap(1.0, (0.0, 0.0), (width, height)), references
    elif name == 'pad':
        left, top = PAD_PX
        pmap = PixelMap(1.0, (-left, -top), (width + left, height + top))
        padded = cv2.copyMakeBorder(rgb, top, 0, left, 0, cv2.BORDER_CONSTANT)
        yield padded, pmap, [pmap.points(k) for k in references]
    else:
        for keypoints in references:
            image, pmap = _close_up(rgb, keypoints, name == 'border')
            mapped = pmap.points(keypoints)
            if name == 'occluded':
                low, high = mapped.min(axis=0), mapped.max(axis=0)
                bottom = int(low[1] + OCCLUDED_TOP * (high[1] - low[1]))
                image = image.copy()
                image[:max(bottom, 0)] = 128
            inside = np.all((mapped >= 0.0) & (mapped < CLOSE_UP_PX), axis=1)
            if name != 'border' or inside.sum() >= MIN_INSIDE:
                yield image, pmap, [mapped]


def _match(result, reference_px):
    """Return the published hand whose observed keypoints match ``reference_px``, or None."""
    diagonal = float(np.linalg.norm(reference_px.max(axis=0) - reference_px.min(axis=0)))
    best, best_error = None, MATCH_FRACTION * diagonal
    for hand in result.hands:
        error = float(np.mean(np.linalg.norm(hand.observed_keypoints_px - reference_px,
                                             axis=1)))
        if error <= best_error:
            best, best_error = hand, error
    return best


def evaluate(pipeline, variants=VARIANTS, names=None):
    """Return one row per (image, variant, MediaPipe hand): outcome and figures."""
    from hand_mesh_ros.core.types import Frame
    reference = load_reference()
    found = load_reference('mediapipe_variants.json')
    rows = []
    for image_name in sorted(names or reference):
        hands = reference[image_name]
        if not hands:
            continue
        bgr = cv2.imread(str(hard_hands_dir() / image_name), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        camera = nominal_camera(rgb.shape[1], rgb.shape[0])
        for variant in variants:
            for index, (image, pmap, mapped) in enumerate(variant_images(rgb, hands,
                                                                         variant)):
                seen = [np.asarray(h['keypoints_px'], dtype=np.float64)
                        for h in found[variant_name(image_name, variant, index)]]
                pipeline.reset()
                frame_camera = (pmap.camera(camera) if variant in ('whole', 'pad')
                                else nominal_camera(*pmap.size))
                result = pipeline.process(Frame(rgb=image, stamp_ns=0, camera=frame_camera))
                figures = {f['track_id']: f for f in result.gate_figures
                           if f['rejected'] is None}
                for reference_px in seen:
                    rows.append(_row(image_name, variant, result, reference_px, figures))
                rows += [{'image': image_name, 'variant': variant,
                          'outcome': 'mediapipe_missed'}] * max(len(mapped) - len(seen), 0)
    return rows


def _row(image_name, variant, result, reference_px, figures):
    """Return the outcome of one MediaPipe hand in one processed image."""
    hand = _match(result, reference_px)
    row = {'image': image_name, 'variant': variant}
    if hand is not None:
        gate = figures.get(hand.track_id, {})
        row.update(outcome='published', shape_source=hand.shape_source,
                   reprojection_error=gate.get('reprojection_error'),
                   depth_m=float(hand.joints_m[0, 2]))
    elif result.rejected:
        row.update(outcome='rejected', reasons=dict(result.rejected))
    else:
        row['outcome'] = 'not_detected'
    return row


def summarise(rows):
    """Return {variant: {outcome counts, refitted, max reprojection error}}."""
    out = {}
    for variant in sorted({row['variant'] for row in rows}):
        mine = [row for row in rows if row['variant'] == variant]
        counts = {}
        for row in mine:
            counts[row['outcome']] = counts.get(row['outcome'], 0) + 1
        mine = [row for row in mine if row['outcome'] != 'mediapipe_missed']
        published = [row for row in mine if row['outcome'] == 'published']
        errors = [row['reprojection_error'] for row in published]
        out[variant] = {'hands': len(mine), 'outcomes': counts,
                        'refitted_from_2d': sum(row['shape_source'] == 'refit_2d'
                                                for row in published),
                        'max_reprojection_error': max(errors) if errors else None,
                        'missed': ['%s: %s' % (row['image'], row.get('reasons', row['outcome']))
                                   for row in mine if row['outcome'] != 'published']}
    return out


def run(variant='full', refit=True):
    """Return the summary of every variant (see the module docstring)."""
    from hand_mesh_ros.core.config import PipelineConfig
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    config = PipelineConfig().with_values({'model.variant': variant,
                                           'model.backend': 'onnxruntime',
                                           'gates.refit_from_2d': refit})
    pipeline = HandMeshPipeline(config)
    try:
        rows = evaluate(pipeline)
    finally:
        pipeline.close()
    return {'variant': variant, 'refit_from_2d': refit, 'summary': summarise(rows)}


def main(argv=None):
    """Print the hard-hand figures (JSON last with ``--json``)."""
    parser = argparse.ArgumentParser(prog='hand-mesh eval hard-hands',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--variant', default='full', choices=('full', 'lite'),
                        help='network size, as model.variant (default: full)')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    parser.add_argument('--no-refit', action='store_true',
                        help='drop hands whose network 3D fails (gates.refit_from_2d false)')
    parser.add_argument('--write-variants', metavar='DIR', default=None,
                        help='only write the variant images to DIR (for MediaPipe)')
    args = parser.parse_args(argv)
    if args.write_variants:
        print('%d variant images written' % write_variants(Path(args.write_variants)))
        return 0
    out = run(variant=args.variant, refit=not args.no_refit)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0
