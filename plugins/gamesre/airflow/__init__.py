"""Airflow glue: hooks, operators, sensors, triggers and notifiers. The only package that imports Airflow."""
