"""Engines run a scoring job; each is one module with a ``run(job) -> result`` function."""
