"""Measuring quality and speed: evaluation and the bench."""
