"""Semantic segmentation in the worker: data (image + mask), joint transforms, losses and inference."""
