"""A third-party mergekit merge method: θ₀ + alpha · mean of the task vectors."""
