"""Teacher networks for distillation (e.g. the FaceNet face-embedding teacher)."""
