"""Long-running soak tests of the node: overload and many-frame runs."""
