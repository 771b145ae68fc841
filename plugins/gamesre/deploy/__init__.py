"""Deploy domain: the request, the rollout plan, the gates and the statistical analysis. Pure: no Airflow, no I/O."""
