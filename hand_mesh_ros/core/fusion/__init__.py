"""Several cameras' hands fused into one hand per physical hand, in a common frame."""
