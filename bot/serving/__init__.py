"""Serving: the inference queue, model files, operations port, rate limits, shared state, logging."""
