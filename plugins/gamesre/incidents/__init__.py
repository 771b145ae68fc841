"""Incident response: pure domain (intake, severity, on-call, escalation, ids); no Airflow, no network."""
