"""Camera models: intrinsics, distortion, fallback cameras and their checks."""
