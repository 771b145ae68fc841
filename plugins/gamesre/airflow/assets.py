"""Airflow assets this project publishes; light to import, so DAG files can use them at parse time."""
from __future__ import annotations

from airflow.sdk import Asset

# The published error-budget policy state: one event per hourly computation, the states in the event's extra.
POLICY_STATE_ASSET = Asset(name="error_budget_policy_state", uri="gamesre://error-budget/policy-state")
