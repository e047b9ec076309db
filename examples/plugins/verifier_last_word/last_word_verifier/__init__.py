"""A third-party verifier for distill-ortho-merge: the completion's last word equals the gold `answer`."""
