"""Evaluation metrics per task; each accumulates batches and returns a JSON-able dict."""
