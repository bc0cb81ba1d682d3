"""Tiers: the ladder as data (``ladders``: thresholds, any-of rules, near-tier bands,
hysteresis) and tiering a panel by it, with migration between months (``assign``)."""
