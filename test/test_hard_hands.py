"""Hard poses (call, rock, four, pointing, fists): every hand MediaPipe finds, we publish.

Whole images, padded, close-ups filling the frame, cut by the image border and occluded
(``hand-mesh eval hard-hands``); the reference is MediaPipe's own hands in each image. A
hand we miss is counted by why: the gates must lose none, the palm detector a few.
"""

import numpy as np
import pytest

from hand_mesh_ros.core.config import GatesConfig, PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.tools.evaluation import eval_hard_hands


@pytest.fixture(scope='module')
def rows():
    pipeline = HandMeshPipeline(PipelineConfig().with_values({'model.backend': 'onnxruntime'}))
    try:
        yield eval_hard_hands.evaluate(pipeline)
    finally:
        pipeline.close()


def test_the_images_and_their_reference_agree():
    reference = eval_hard_hands.load_reference()
    variants = eval_hard_hands.load_reference('mediapipe_variants.json')
    assert len(reference) == 40 and sum(len(hands) for hands in reference.values()) == 41
    for name in reference:
        assert (eval_hard_hands.hard_hands_dir() / name).is_file()
    assert len(variants) == 183 and sum(len(hands) for hands in variants.values()) == 138


def test_no_hand_mediapipe_finds_is_lost_to_the_gates(rows):
    found = [row for row in rows if row['outcome'] != 'mediapipe_missed']
    assert len(found) == 138
    assert [row for row in found if row['outcome'] == 'rejected'] == []
    published = [row for row in found if row['outcome'] == 'published']
    assert len(published) >= 0.93 * len(found)
    for variant in eval_hard_hands.VARIANTS:
        mine = [row for row in found if row['variant'] == variant]
        assert sum(row['outcome'] == 'published' for row in mine) >= 0.85 * len(mine), variant


def test_published_hard_hands_reproject_within_the_gate(rows):
    gates = GatesConfig()
    for row in rows:
        if row['outcome'] != 'published':
            continue
        limit = (gates.max_refit_error if row['shape_source'] == 'refit_2d'
                 else gates.max_reprojection_error)
        assert row['reprojection_error'] <= limit, row
        assert gates.min_depth_m <= row['depth_m'] <= gates.max_depth_m
    refitted = [row for row in rows if row.get('shape_source') == 'refit_2d']
    assert all(np.isfinite(row['reprojection_error']) for row in refitted)
