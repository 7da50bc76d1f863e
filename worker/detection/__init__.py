"""Object detection and instance segmentation: data, transforms, inference."""
