"""NAR / CAR / CNR: whitebox, graybox and blackbox explainable ranking, with their baselines."""
