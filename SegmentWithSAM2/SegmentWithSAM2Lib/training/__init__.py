"""Training: synthetic and file datasets, clip sampling with simulated prompts, losses, the loop."""
