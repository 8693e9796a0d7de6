"""Model building: weight conversion, hand-model generation, training, export.

torch and other build-time libraries are imported lazily inside the modules
that need them; running the node never imports this package's heavy parts.
"""
