"""The core: what a bank's customers are, in the order of the flow.

``data`` (the panel contract, its checks and files) -> ``tiers`` (the ladder) ->
``features`` (point-in-time behaviour) -> ``groups`` (strategic groups, profiles, names) ->
``upgrade`` (labels, the near-tier upgrade model, its baselines, ranks, call lists) ->
``explain`` (TreeSHAP reason codes) -> ``scoring`` (one batch, the output contract), with
``drift`` (population stability) and ``config`` beside them.

The core knows nothing of MLflow, the CLI (typer, rich) or Spark: it takes and returns
frames and fitted estimators. ``tests/test_architecture.py`` holds it to that.
"""
