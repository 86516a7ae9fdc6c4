"""Models: one module (or package) per model, with a common fit/score or fit/predict interface."""
