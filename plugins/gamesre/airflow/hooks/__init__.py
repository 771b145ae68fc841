"""Hooks: turn Airflow connections into this project's integration clients."""
