"""Camera models built from CameraInfo: projection, distortion, plausibility checks."""
