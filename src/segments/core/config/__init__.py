"""Configuration as data: the experiment (``experiment``: ``load_config``), its sections
(``sections``), packaged presets and YAML (``presets``) and the estimators' parameter
declarations the sections are built from (``params``)."""
