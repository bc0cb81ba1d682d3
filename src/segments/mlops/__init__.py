"""MLOps: MLflow tracking, the model registry and its promotion gates, model cards, plots and
the pyfunc wrappers that carry the core's estimators into MLflow. Uses the core; never the
jobs, the engines or the CLI."""
