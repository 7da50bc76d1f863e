"""Semantic segmentation: the worker's half (``runtime.RUNTIME``)."""
