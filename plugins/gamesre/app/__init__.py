"""Use cases, one module per workflow. Each takes its dependencies explicitly (a small ports object) and imports
neither Airflow nor an outside system's client: plugins/gamesre/airflow builds the ports from hooks."""
