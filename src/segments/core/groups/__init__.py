"""Strategic groups: the clustering estimator (``model``), its algorithms (``algorithms``),
ids kept across refits (``ids``), and profiles, names and persona cards (``profiles``,
``vocabulary``)."""
