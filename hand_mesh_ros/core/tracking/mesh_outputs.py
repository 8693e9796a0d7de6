"""The mesh network's own outputs for one crop, typed.

The hand mesh network has the landmark model's four outputs (keypoints, presence,
handedness, world landmarks) and three more: the hand model's pose and shape and its 21
keypoints, each lifted twice, as a right hand (index 0) and as a left hand (index 1), since
the side is known only after the track's handedness smoothing.
"""

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

#: Names of the mesh network's outputs beyond the landmark model's.
MESH_OUTPUTS = ('mesh_pose_aa', 'mesh_shape', 'mesh_keypoints')
#: Index of each side in the lifted outputs.
SIDE_INDEX = {'right': 0, 'left': 1}


@dataclass(frozen=True)
class MeshOutputs:
    """The lifted outputs of one crop (crop-aligned axes, metres, radians).

    Attributes:
        pose_aa: (2, J, 3) axis-angle per bone, root rotation in the crop's frame.
        shape: (2, S) shape coefficients.
        keypoints_m: (2, 21, 3) the mesh's keypoints, crop-aligned axes.

    """

    pose_aa: np.ndarray
    shape: np.ndarray
    keypoints_m: np.ndarray

    def for_side(self, side: str):
        """Return (pose_aa (J, 3), shape (S,), keypoints_m (21, 3)) lifted as ``side``."""
        index = SIDE_INDEX[side]
        return (np.asarray(self.pose_aa[index], dtype=np.float64),
                np.asarray(self.shape[index], dtype=np.float64),
                np.asarray(self.keypoints_m[index], dtype=np.float64))


def decode_mesh_outputs(outputs: Mapping[str, np.ndarray]) -> Optional[MeshOutputs]:
    """Return the :class:`MeshOutputs` in one crop's ``outputs`` by name; None without them."""
    if not all(name in outputs for name in MESH_OUTPUTS):
        return None
    return MeshOutputs(*(np.asarray(outputs[name]) for name in MESH_OUTPUTS))
