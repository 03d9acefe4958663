"""Encoders, the on-disk embedding cache, and embedding a task."""
