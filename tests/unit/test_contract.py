"""The metric contract's infrastructure section: exporters, their series, and errors that name the entry."""
from __future__ import annotations

import copy

import pytest
import yaml

from gamesre.core.contract import ContractError, load_contract, parse_contract
from gamesre.core.paths import METRICS_CONTRACT


def raw() -> dict:
    return dict(yaml.safe_load(METRICS_CONTRACT.read_text()))


def test_infrastructure_series_belong_to_exporters_with_jobs() -> None:
    contract = load_contract()
    assert contract.infra_job("node_cpu_seconds_total") == "node"
    assert contract.infra_job("container_cpu_usage_seconds_total") == "kubelet"
    assert contract.infra_job("kube_endpoint_address") == "kube-state-metrics"
    assert {"up", "ALERTS", "game_action_requests_total", "game_action_duration_seconds_bucket"} <= (
        contract.all_series())
    assert not set(contract.infrastructure) & set(contract.series_index())


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["infrastructure"]["up"].update(exporter="cadvisor"),
     "infrastructure.up.exporter: unknown exporter 'cadvisor'"),
    (lambda r: r["infrastructure"]["up"].update(type="histogram"),
     "infrastructure.up.type: 'histogram' is not one of counter, gauge"),
    (lambda r: r["infrastructure"].update({"bad-name": {"type": "gauge", "exporter": "prometheus"}}),
     "infrastructure.bad-name: not a valid Prometheus metric name"),
    (lambda r: r["infrastructure"].update({"game_sessions_active": {"type": "gauge", "exporter": "prometheus"}}),
     "infrastructure.game_sessions_active: already defined under metrics"),
    (lambda r: r["exporters"]["node-exporter"].pop("job"), "exporters.node-exporter: missing field 'job'"),
])
def test_a_bad_infrastructure_entry_is_named(change, message: str) -> None:
    document = copy.deepcopy(raw())
    change(document)
    with pytest.raises(ContractError, match=message):
        parse_contract(document, "metrics.yaml")
