"""Metrics: rating error, top-k ranking and generated-text quality."""
