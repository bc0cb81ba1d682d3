"""Explanations: exact TreeSHAP (``treeshap``), reason codes in English and Chinese and the
surrogate that explains group membership (``reasons``)."""
