"""Image classification: the worker's half (``runtime.RUNTIME``)."""
