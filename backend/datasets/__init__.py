"""Datasets: import, validation, the canonical form, splits, exports, browsing."""
