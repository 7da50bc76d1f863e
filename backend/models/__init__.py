"""The trained-model registry: checkpoints, their metrics, predictions, CAMs and exports."""
