"""Observability as code: scrape configuration, alert rules, Alertmanager routing and Grafana dashboards, generated
from the SLO specs (include/config/slos.yaml) and the metric contract (include/config/metrics.yaml)."""
