"""The core: what a bank's customers are, in the order of the flow.

``panel`` (the data contract, reading it; ``validation`` checks it, ``months`` parses its
months, ``transactions`` builds one from transactions) -> ``ladders`` and ``tiers`` (the
ladder, the tier table) -> ``features`` (point-in-time behaviour) -> ``groups`` and
``profiles`` (strategic groups, their profiles and names) -> ``upgrade`` (labels, the
near-tier upgrade model, its baselines) -> ``explain`` (SHAP reason codes) and ``drift``
(population stability). ``config``, ``files`` (inputs), ``outputs`` (safe writing) and
``synthetic`` serve them all.

The core knows nothing of MLflow, the CLI (typer, rich) or Spark: it takes and returns
frames and fitted estimators. ``tests/test_architecture.py`` holds it to that.
"""
