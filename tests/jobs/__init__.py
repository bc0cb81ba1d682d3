"""Tests of segments.jobs (the folder mirrors the package)."""
