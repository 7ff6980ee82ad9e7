"""Cluster metadata: the immutable metadata image, the backend interface, and the single-node backend."""
