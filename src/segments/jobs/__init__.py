"""Jobs: training (``train``) and batch scoring (``score``), the units a data scientist or a
scheduler runs. A job checks everything before any work, runs the core on an engine and logs
to MLflow through :mod:`segments.mlops`."""
