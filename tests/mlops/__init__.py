"""Tests of segments.mlops (the folder mirrors the package)."""
