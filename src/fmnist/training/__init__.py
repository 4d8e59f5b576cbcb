"""Training: configuration presets, the trainer with checkpoints, and precision detection."""
