"""CPU parity of the FP16 graphs: the whole pipeline on FP16 vs FP32 graphs, real data.

``python -m hand_mesh_ros.tools.bench.fp16_parity [--json]`` converts the palm detector and the
mesh network of both variants with :func:`~hand_mesh_ros.inference.fp16_graph.convert_to_fp16`
(the graphs TensorRT 11 and ONNX Runtime's CUDA provider get for FP16), runs the pipeline on
ONNX Runtime's CPU on ``hands.jpg`` and the ASL video with each, and reports per hand the
largest 2D keypoint difference (px) and 3D joint difference (mm).  ONNX Runtime's CPU runs
several float16 ops through inserted casts, so this checks the graphs, not GPU arithmetic.
"""

import argparse
import dataclasses
import json
import pathlib
import shutil
import sys
import tempfile

import cv2
import numpy as np

from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.inference.fp16_graph import convert_to_fp16
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.paths import models_dir


def read_video(path):
    """Return the RGB frames of a video file."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def run_pipeline(models, variant, frames):
    """Return per frame {track id: (network 2D keypoints px, 3D joints m)}."""
    config = PipelineConfig()
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, backend='onnxruntime', models_dir=str(models), variant=variant))
    pipeline = HandMeshPipeline(config)
    results = []
    for index, rgb in enumerate(frames):
        result = pipeline.process(Frame(rgb=rgb, stamp_ns=index * 40_000_000))
        results.append({h.track_id: (h.observed_keypoints_px, h.joints_m) for h in result.hands})
    return results


def compare(fp32, fp16):
    """Return the figures of two runs of the same frames."""
    keypoints_px, joints_mm, same = [], [], 0
    for a, b in zip(fp32, fp16):
        same += set(a) == set(b)
        for track in set(a) & set(b):
            keypoints_px.append(float(np.linalg.norm(a[track][0] - b[track][0], axis=1).max()))
            joints_mm.append(float(1000 * np.linalg.norm(a[track][1] - b[track][1], axis=1).max()))
    return {'frames': len(fp32), 'frames_with_same_tracks': same, 'hands': len(keypoints_px),
            'keypoints_px_median': float(np.median(keypoints_px)),
            'keypoints_px_max': float(np.max(keypoints_px)),
            'joints_mm_median': float(np.median(joints_mm)),
            'joints_mm_max': float(np.max(joints_mm))}


def main(argv=None):
    """Run the comparison; print one line per case (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    photo = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    cases = {'hands.jpg': [photo], 'asl_video': read_video(data_dir() / 'asl_hand.25fps.mp4')}
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp16_dir = pathlib.Path(tmp)
        shutil.copy(models_dir() / 'hand_model_right.npz', fp16_dir)
        for variant in ('full', 'lite'):
            for stem in (f'palm_detection_{variant}', f'hand_mesh_{variant}'):
                (fp16_dir / f'{stem}.onnx').write_bytes(
                    convert_to_fp16(models_dir() / f'{stem}.onnx'))
            for name, frames in cases.items():
                figures = compare(run_pipeline(models_dir(), variant, frames),
                                  run_pipeline(fp16_dir, variant, frames))
                report[f'{variant}/{name}'] = figures
                print(f'{variant} {name}: {figures["hands"]} hands; 2D keypoints median '
                      f'{figures["keypoints_px_median"]:.2f} px (max '
                      f'{figures["keypoints_px_max"]:.2f}); 3D joints median '
                      f'{figures["joints_mm_median"]:.2f} mm (max {figures["joints_mm_max"]:.2f})')
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
