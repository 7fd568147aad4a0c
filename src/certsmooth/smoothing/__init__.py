"""Training-time randomized smoothing: counter-based noise, partitioned ensemble training,
checkpoints."""
