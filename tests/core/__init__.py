"""Tests of segments.core (the folder mirrors the package)."""
