"""Object detection and instance segmentation: the worker's half (``runtime.RUNTIME``)."""
