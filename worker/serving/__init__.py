"""The inference lane: warm models in a memory-bounded LRU, concurrent requests micro-batched, every task
answered (class scores, masks, boxes and masks) and single-image Grad-CAM."""
