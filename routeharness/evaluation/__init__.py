"""The protocol: metrics, scoring, tuning, one run, the matrix, executors and checkpoints."""
