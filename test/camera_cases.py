"""Calibration fields shared by the camera-model and root-recovery tests.

Distortion coefficients of the size real drivers publish, one set per supported model.
"""

import numpy as np

#: Identity rectification (R) and an all-zero projection (P: "use K"), as CameraInfo fields.
EYE = tuple(np.eye(3).ravel())
NO_P = (0.0,) * 12
#: D per ``distortion_model`` ('' = none).
DISTORTIONS = {
    'plumb_bob': (0.11, -0.23, 0.0012, -0.0009, 0.07),
    'rational_polynomial': (0.35, -0.12, 0.0011, 0.0018, 0.012, 0.21, 0.04, 0.011),
    'equidistant': (0.05, -0.021, 0.0032, -0.0011),
    '': (),
}
