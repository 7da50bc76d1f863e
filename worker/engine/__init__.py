"""The training engine: one loop (``loop.Trainer``) extended by callbacks, and resumable checkpoints."""
