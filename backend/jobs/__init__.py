"""Jobs: the row is the truth; the broker carries only the id."""
