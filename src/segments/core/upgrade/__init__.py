"""Upgrade potential: labels and the out-of-time split (``labels``), the model and its
baselines (``model``), metrics (``metrics``), ranks within a band (``ranks``), expected
gain and call lists (``calls``)."""
