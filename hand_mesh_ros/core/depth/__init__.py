"""Fusion of a registered depth image into the hands."""
