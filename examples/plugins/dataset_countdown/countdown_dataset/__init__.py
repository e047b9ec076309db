"""A third-party prompt dataset for distill-ortho-merge: count down from n."""
