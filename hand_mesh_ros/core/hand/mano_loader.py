"""Load a user's own MANO model file (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``) into a HandModel.

MANO is licence-restricted: this project never ships it; users who hold a licence point the
``hand_model`` parameter at their own file. The official files are Python 2 pickles holding
``chumpy`` objects, and chumpy does not import with current numpy. This loader needs neither:
a restricted unpickler maps every ``chumpy.*`` class to :class:`_ChumpyArray` (keeps the
pickled state, whose ``x`` is the array) and the old ``scipy.sparse`` classes to
:class:`_SparseState`, rebuilt as :class:`scipy.sparse.csc_matrix`.

The result has MANO's topology (778 vertices, 1538 triangles, 16 joints) and is expressed in
the project's hand frame (wrist at the origin, +y distal, +z palmar, +x towards the thumb for
a right hand and towards the little finger for a left hand; see
:mod:`hand_mesh_ros.core.hand.hand_model`). Its pose is MANO's: 16 axis-angle vectors in MANO's own
axes (rest frames are MANO's axes rotated into the hand frame), with MANO's pose correctives
(``posedirs``) and 10 shape coefficients (``shapedirs``). The 21 keypoints are the 16 joints
plus 5 fingertip vertices, in MediaPipe order. MANO's axes are not anatomical, so its joint
limits are +-pi (no constraint). MANO's joints are its learned rotation centres, so they are
the published joint centres as they are (no anatomical remapping as for the anny model).

Pose convention: **flat hand mean**. The pose coefficients are the full axis-angle rotations
of MANO's joints; the zero pose is MANO's flat template hand. MANO's file also holds
``hands_mean`` (45,), the mean finger pose of its training scans, which MANO layers add to
the finger rotations unless told otherwise (smplx: ``flat_hand_mean=False``, the default).
This loader never adds it (smplx ``flat_hand_mean=True``); :func:`load_mano_hands_mean` and
:func:`pose_to_mean_relative` convert to and from the other convention.
"""

from pathlib import Path
import pickle

import numpy as np
import scipy.sparse

from hand_mesh_ros.core.hand.hand_model import HandModel
from hand_mesh_ros.core.hand.topology import FINGERTIPS, SIDES

#: MANO's joints: wrist, then index, middle, pinky, ring, thumb (three each).
MANO_JOINT_NAMES = ('wrist', 'index1', 'index2', 'index3', 'middle1', 'middle2', 'middle3',
                    'pinky1', 'pinky2', 'pinky3', 'ring1', 'ring2', 'ring3',
                    'thumb1', 'thumb2', 'thumb3')
#: Fingertip vertices of MANO's topology (thumb, index, middle, ring, pinky), as used by the
#: smplx package's MANO keypoint convention.
MANO_TIP_VERTICES = (744, 320, 443, 554, 671)
#: MediaPipe keypoint k is MANO joint MANO_TO_MEDIAPIPE[k], or a fingertip vertex where -1.
MANO_TO_MEDIAPIPE = (0, 13, 14, 15, -1, 1, 2, 3, -1, 4, 5, 6, -1, 10, 11, 12, -1, 7, 8, 9, -1)
_TIP_SLOTS = {tip: slot for slot, (_, tip) in enumerate(FINGERTIPS)}
_SPARSE_NAMES = ('csc_matrix', 'csr_matrix', 'coo_matrix')


class _ChumpyArray:
    """Stand-in for any pickled chumpy object: keeps its state dictionary."""

    def __init__(self, *args, **kwargs):
        """Accept and ignore constructor arguments (pickle may pass none or some)."""
        self.state = {}

    def __setstate__(self, state):
        """Keep the pickled ``__dict__``."""
        self.state = dict(state) if isinstance(state, dict) else {'x': state}

    def array(self):
        """Return the wrapped numpy data, chumpy's ``x`` term."""
        if 'x' not in self.state:
            raise ValueError('unsupported chumpy object in the MANO file (no "x" term): %s'
                             % sorted(self.state))
        return _to_array(self.state['x'])


class _SparseState:
    """Stand-in for a pickled scipy sparse matrix from any scipy version."""

    def __init__(self, *args, **kwargs):
        """Accept and ignore constructor arguments."""
        self.state = {}

    def __setstate__(self, state):
        """Keep the pickled ``__dict__``."""
        self.state = dict(state)

    def matrix(self):
        """Return the matrix as :class:`scipy.sparse.csc_matrix`."""
        s = self.state
        shape = tuple(s.get('_shape', s.get('shape')))
        fmt = s.get('format', s.get('_format', 'csc'))
        if 'row' in s and 'col' in s:  # coo
            return scipy.sparse.coo_matrix((s['data'], (s['row'], s['col'])), shape=shape).tocsc()
        cls = scipy.sparse.csr_matrix if fmt == 'csr' else scipy.sparse.csc_matrix
        return cls((s['data'], s['indices'], s['indptr']), shape=shape).tocsc()


class _MANOUnpickler(pickle.Unpickler):
    """Unpickler that resolves chumpy and old scipy classes without importing chumpy."""

    def find_class(self, module, name):
        """Map chumpy and scipy.sparse classes to stand-ins; allow numpy and builtins."""
        if module == 'chumpy' or module.startswith('chumpy.'):
            return _ChumpyArray
        if module.startswith('scipy.sparse') and name in _SPARSE_NAMES:
            return _SparseState
        if module.startswith('numpy.core'):
            try:  # numpy >= 2 name, avoids the numpy.core deprecation warning
                return super().find_class('numpy._core' + module[len('numpy.core'):], name)
            except (ImportError, AttributeError):
                pass
        if module.split('.')[0] in ('numpy', 'copy_reg', 'copyreg', '__builtin__', 'builtins',
                                    '_codecs'):
            return super().find_class(module, name)
        raise pickle.UnpicklingError('unexpected class %s.%s in a MANO file' % (module, name))


def _to_array(value):
    """Return ``value`` as a numpy array (unwrapping chumpy stand-ins)."""
    if isinstance(value, _ChumpyArray):
        return value.array()
    if isinstance(value, _SparseState):
        return value.matrix()
    if scipy.sparse.issparse(value):
        return value
    return np.asarray(value)


def read_mano_pickle(path):
    """Return the MANO file's dictionary with plain numpy arrays / scipy sparse matrices."""
    with open(path, 'rb') as handle:
        raw = _MANOUnpickler(handle, encoding='latin1').load()
    if not isinstance(raw, dict):
        raise ValueError('%s is not a MANO model file (no dictionary inside)' % path)
    return {key: _to_array(value) if not isinstance(value, str) else value
            for key, value in raw.items()}


def _side_from_name(path):
    """Return 'left'/'right' from a MANO file name, or None."""
    name = Path(path).name.upper()
    if 'LEFT' in name:
        return 'left'
    if 'RIGHT' in name:
        return 'right'
    return None


def hand_frame_rotation(joints, side):
    """Return R (3, 3) mapping MANO's axes to the hand frame (rows: hand x, y, z axes).

    Args:
        joints: (16, 3) MANO rest joints (native axes).
        side: 'right' or 'left'.
    """
    y_axis = joints[4] - joints[0]  # wrist -> middle MCP
    y_axis = y_axis / np.linalg.norm(y_axis)
    x_axis = joints[1] - joints[7]  # pinky MCP -> index MCP: radial
    if side == 'left':
        x_axis = -x_axis  # the left hand's +x points to the little finger
    x_axis = x_axis - (x_axis @ y_axis) * y_axis
    x_axis = x_axis / np.linalg.norm(x_axis)
    return np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)])


def load_mano(path, side=None) -> HandModel:
    """Load a MANO ``.pkl`` as a :class:`HandModel` in the hand frame.

    Args:
        path: the user's MANO_RIGHT.pkl or MANO_LEFT.pkl.
        side: 'right' or 'left'; None reads it from the file name.
    """
    side = side or _side_from_name(path)
    if side not in SIDES:
        raise ValueError('cannot tell the side of %s; pass side="right" or "left"' % path)
    data = read_mano_pickle(path)
    v_template = np.asarray(data['v_template'], dtype=np.float64)
    regressor = scipy.sparse.csc_matrix(data['J_regressor'], dtype=np.float64)
    shapedirs = np.asarray(data['shapedirs'], dtype=np.float64)  # (V, 3, 10)
    posedirs = np.asarray(data['posedirs'], dtype=np.float64)  # (V, 3, 135)
    parents = np.asarray(data['kintree_table'], dtype=np.int64)[0].copy()
    parents[0] = -1  # stored as 2**32 - 1
    n_joints = regressor.shape[0]
    rest_joints = regressor @ v_template
    rot = hand_frame_rotation(rest_joints, side)
    root = rest_joints[0]
    shape_v = np.einsum('ij,vjs->svi', rot, shapedirs)
    shape_j = np.stack([regressor @ s for s in shape_v])
    pose_v = np.einsum('ij,vjp->pvi', rot, posedirs)
    tip_index = np.zeros((21, 1), dtype=np.int64)
    tip_weight = np.zeros((21, 1))
    for k, slot in _TIP_SLOTS.items():
        tip_index[k, 0] = MANO_TIP_VERTICES[slot]
        tip_weight[k, 0] = 1.0
    return HandModel(
        template_vertices_m=(v_template - root) @ rot.T,
        faces=np.asarray(data['f'], dtype=np.int64),
        skin_weights=np.asarray(data['weights'], dtype=np.float64),
        parents=parents,
        rest_joints_m=(rest_joints - root) @ rot.T,
        rest_bone_rotations=np.repeat(rot[None], n_joints, axis=0),
        bone_names=MANO_JOINT_NAMES[:n_joints],
        shape_names=['beta_%d' % i for i in range(shapedirs.shape[-1])],
        shape_vertex_basis_m=shape_v, shape_joint_basis_m=shape_j,
        keypoint_joint_index=MANO_TO_MEDIAPIPE,
        keypoint_vertex_index=tip_index, keypoint_vertex_weight=tip_weight,
        joint_limits_min_rad=np.full((n_joints, 3), -np.pi),
        joint_limits_max_rad=np.full((n_joints, 3), np.pi),
        native_side=side, pose_basis_m=pose_v, name=Path(path).name)


def load_mano_hands_mean(path):
    """Return MANO's ``hands_mean`` of the file at ``path`` as (15, 3) axis-angle, radians.

    The rows are the finger joints 1..15 in MANO's order and MANO's axes (the axes of this
    loader's pose coefficients). A file without ``hands_mean`` gives zeros.
    """
    data = read_mano_pickle(path)
    mean = data.get('hands_mean')
    if mean is None:
        return np.zeros((15, 3))
    return np.asarray(mean, dtype=np.float64).reshape(15, 3)


def pose_to_mean_relative(pose_aa, hands_mean_aa, inverse=False):
    """Convert flat-hand-mean pose coefficients (16, 3) to MANO's mean-relative convention.

    ``mean-relative = flat - hands_mean`` on the finger rows (1..15), the global rotation
    (row 0) unchanged; ``inverse=True`` converts back. This is how a MANO layer with
    ``flat_hand_mean=False`` reads the same hand. Never mutates ``pose_aa``.
    """
    out = np.array(pose_aa, dtype=np.float64)
    sign = 1.0 if inverse else -1.0
    out[..., 1:16, :] += sign * np.asarray(hands_mean_aa, dtype=np.float64).reshape(15, 3)
    return out
