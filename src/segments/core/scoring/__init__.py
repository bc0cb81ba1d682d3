"""Scoring in the core: one batch of customers to tiers, groups, probabilities, gains and
reasons (``batch``), and the output contract every engine writes (``output``)."""
