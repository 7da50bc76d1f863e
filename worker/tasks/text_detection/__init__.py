"""Text detection (DBNet): polygons of words, scored by the ICDAR 2015 protocol."""
