"""The operator's use cases: what happens when a node, an offer or a job changes."""
