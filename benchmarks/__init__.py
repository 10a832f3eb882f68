"""Benchmarks of the platform, run from the project root (``make bench``; see README.md): each
prints measured numbers and ratios against a baseline measured in the same run."""
