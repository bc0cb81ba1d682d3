"""Tests of segments.engines (the folder mirrors the package)."""
