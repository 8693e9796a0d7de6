"""Camera models: intrinsics, distortion and their checks."""
