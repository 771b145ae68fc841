"""The alerting spec and what is generated from it: committed files current, contract series only, labels,
runbook links, the maintenance window's clock, scrape rendering, and errors that name the field."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gamesre.calendar.spec import RecurringWindow
from gamesre.core.contract import load_contract
from gamesre.observability import alertmanager, alerts, scrape
from gamesre.observability.alerts import AlertingError, load_alerting, parse_alerting, weekly_span
from tests.unit.test_contract_consumers import metric_names

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = (alerts.GAME_RULES, alerts.INFRA_RULES, alerts.ESCALATION_RULES)
EXTRA_PROMQL = {"delta", "predict_linear", "label_replace", "day_of_week", "hour", "minute", "group_left"}
PIPELINE = {alerts.WATCHDOG_ALERT, alerts.MAINTENANCE_ALERT}


def rules_of(path: Path) -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load((REPO / path).read_text())["groups"] for r in g["rules"]]


def raw_spec() -> dict[str, Any]:
    return yaml.safe_load(alerts.ALERTING_PATH.read_text())


def errors_of(raw: dict[str, Any]) -> str:
    src = load_alerting()
    with pytest.raises(AlertingError) as info:
        parse_alerting(raw, "alerting.yaml", contract=src.contract, slos=src.slos, services=src.services,
                       calendar=src.calendar)
    return str(info.value)


@pytest.mark.parametrize("module", [alerts, scrape, alertmanager])
def test_committed_files_are_what_the_specs_generate(module: Any) -> None:
    for path, text in module.generate().items():
        committed = REPO / path
        assert committed.is_file(), f"{path} is missing: run python -m gamesre observability"
        assert committed.read_text() == text, f"{path} is out of date: run python -m gamesre observability"
        assert text.startswith("# GENERATED FILE - DO NOT EDIT.")


def test_alert_rules_read_only_contract_series() -> None:
    allowed = load_contract().all_series()
    for path in RULE_FILES:
        used: set[str] = set()
        for rule in rules_of(path):
            used |= metric_names(rule["expr"]) - EXTRA_PROMQL
        assert used, path
        assert used <= allowed, f"{path}: series outside the metric contract: {sorted(used - allowed)}"


def test_every_alert_has_severity_service_team_summary_description_and_runbook() -> None:
    services = set(load_contract().services) | {alerts.PLATFORM_SERVICE}
    teams = set(load_alerting().spec.routing.team_channels)
    seen = set()
    for path in RULE_FILES:
        for rule in rules_of(path):
            name, labels, notes = rule["alert"], rule["labels"], rule["annotations"]
            seen.add(name)
            assert {"summary", "description", "runbook_url"} <= set(notes), name
            if name == alerts.ESCALATION_ALERT:
                # It keeps the page's own labels (severity page, service, team) and says which level it is.
                assert 'severity="page"' in rule["expr"] and set(labels) == {"escalation", "escalated_after"}
                continue
            expected = ("none",) if name in PIPELINE else ("page", "ticket")
            assert labels["severity"] in expected, name
            assert labels["service"] in services and labels["team"] in teams, name
            if labels["severity"] in ("page", "ticket") and "{{ $value" not in notes["description"]:
                assert "{{ $labels" in notes["description"], f"{name}: the description shows no value"
    assert {"GameServerHighLoad", "GameActionLatencyHigh", "MatchmakingQueueGrowing", "MatchmakingSuccessLow",
            "DataSaveFailures", "NodeCPUHigh", "NodeMemoryHigh", "NodeFilesystemSpaceLow", "PodRestarting",
            "PodNotRunning", "PodNotReady", "EndpointsDown", "TargetDown", "ResourceQuotaNearLimit",
            "Watchdog", "MaintenanceWindow", "PageEscalation"} <= seen


def anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", doc.read_text(), re.M)}


def test_every_runbook_url_resolves_to_a_heading() -> None:
    urls = {r["annotations"]["runbook_url"] for p in (*RULE_FILES, Path("include/prometheus/slo_rules.yml"))
            for r in rules_of(p) if "alert" in r}
    assert len(urls) > 20
    for url in urls:
        path, _, anchor = url.partition("#")
        assert (REPO / path).is_file(), url
        assert anchor and anchor in anchors(REPO / path), f"{url}: no heading #{anchor}"


def test_thresholds_come_from_the_slo_specs() -> None:
    src = load_alerting()
    by_severity = {(r["alert"], r["labels"]["severity"]): r["expr"] for r in rules_of(alerts.GAME_RULES)
                   if "severity" in r["labels"]}
    capacity = alerts.capacity_condition(src.slos["concurrent-sessions"]).threshold
    assert capacity == 100_000
    assert by_severity[("GameServerHighLoad", "ticket")].endswith(f"/ {capacity:.0f} >= 0.8")
    assert by_severity[("GameActionLatencyHigh", "ticket")].endswith("> 0.5")  # the latency SLO's le="0.5"
    assert by_severity[("DataSaveFailures", "ticket")].endswith("> 0.0001")  # 1 - 0.9999


def test_escalation_levels_match_the_mission() -> None:
    levels = [(r["labels"]["escalation"], r["for"], r["expr"]) for r in rules_of(alerts.ESCALATION_RULES)
              if r["alert"] == alerts.ESCALATION_ALERT]
    assert [(name, after) for name, after, _ in levels] == [("secondary", "30m"), ("management", "1h")]
    # counted from when the page fires: the rules select firing pages only, and hold for the delay
    assert all('ALERTS{alertstate="firing",severity="page"' in expr for _, _, expr in levels)


def window(weekday: str, start: str, duration: str) -> RecurringWindow:
    return RecurringWindow.model_validate({
        "id": "w", "weekday": weekday, "start": start, "duration": duration, "services": ["game-server"],
        "reason": "a test window", "owner": "sre", "ticket": "OPS-1"}, context={"services": ("game-server",)})


def test_the_weekly_window_is_converted_from_kst_to_utc_minutes_of_the_week() -> None:
    calendar = load_alerting().calendar
    tuesday = weekly_span(window("TU", "02:00", "4h"), calendar)
    assert (tuesday.start, tuesday.end) == (1 * 1440 + 17 * 60, 1 * 1440 + 21 * 60)  # Monday 17:00-21:00 UTC
    assert tuesday.utc_text() == "Monday 17:00-21:00 UTC"
    # Sunday 08:00 KST is Saturday 23:00 UTC: the window wraps the UTC week and the rule ORs its two parts.
    wrapping = weekly_span(window("SU", "08:00", "3h"), calendar)
    assert (wrapping.start, wrapping.end) == (6 * 1440 + 23 * 60, 2 * 60)
    assert "\nor\n" in wrapping.promql() and wrapping.utc_text() == "Saturday 23:00-Sunday 02:00 UTC"


def test_scrape_jobs_have_their_own_intervals_and_logical_instances() -> None:
    config = yaml.safe_load((REPO / scrape.PROMETHEUS_CONFIG).read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(load_alerting().required_jobs()) <= set(jobs) and "prometheus" in jobs
    assert jobs["game-server"]["scrape_interval"] == "15s" and jobs["node"]["scrape_interval"] == "30s"
    assert jobs["kubelet"]["metrics_path"] == "/metrics/cadvisor"
    instances = [s["labels"]["instance"] for s in jobs["game-server"]["static_configs"]]
    assert instances == ["gs-stable-1", "gs-stable-2", "gs-canary-1"]
    assert config["rule_files"] == ["*_rules.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_the_demo_config_uses_the_same_renderer() -> None:
    from demo.services import ScrapeTarget, render_prometheus_config

    text = render_prometheus_config([ScrapeTarget("game-server", "gs-stable-1", "127.0.0.1:18101")],
                                    extra_jobs={"kubelet": "127.0.0.1:19105/metrics/cadvisor"},
                                    alertmanager="127.0.0.1:19093")
    config = yaml.safe_load(text)
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["game-server"]["static_configs"] == [{"targets": ["127.0.0.1:18101"],
                                                       "labels": {"instance": "gs-stable-1"}}]
    assert jobs["kubelet"]["metrics_path"] == "/metrics/cadvisor"
    assert jobs["kubelet"]["static_configs"] == [{"targets": ["127.0.0.1:19105"]}]
    assert {j["scrape_interval"] for j in jobs.values()} == {"5s"}
    assert {j["scrape_timeout"] for j in jobs.values()} == {"5s"}  # clamped to the interval


def test_scrape_rendering_refuses_what_it_cannot_express() -> None:
    jobs = load_alerting().spec.prometheus.scrape
    with pytest.raises(scrape.ScrapeConfigError, match="'mystery' has no scrape settings"):
        scrape.render([scrape.Target("mystery", "h:1")], jobs=jobs, evaluation_interval="15s", external_labels={})
    with pytest.raises(scrape.ScrapeConfigError, match="different metrics paths"):
        scrape.render([scrape.Target("node", "a:1/x"), scrape.Target("node", "b:1/y")], jobs=jobs,
                      evaluation_interval="15s", external_labels={})


def test_the_committed_alertmanager_config_keeps_secrets_in_files() -> None:
    text = (REPO / alertmanager.ALERTMANAGER_CONFIG).read_text()
    config = yaml.safe_load(text)
    assert not {"slack_api_url", "slack_api_url_file"} & set(config["global"]) and "hooks.slack.com" not in text
    # a Slack app's webhook posts to its own channel only: each channel is sent through its own webhook
    slack = [sc for r in config["receivers"] for sc in r.get("slack_configs", [])]
    assert slack and all(sc["api_url_file"] == f"/etc/alertmanager/secrets/slack-webhook-{sc['channel'][1:]}"
                         for sc in slack)
    assert {sc["channel"] for sc in slack} == {"#sre-oncall", "#sre-management", "#game-server-alerts",
                                               "#matchmaking-alerts", "#sre-tickets"}
    keys = [pd for r in config["receivers"] for pd in r.get("pagerduty_configs", [])]
    assert keys and all(set(pd) & {"routing_key", "service_key"} == set() for pd in keys)
    assert {pd["routing_key_file"] for pd in keys} == {f"/etc/alertmanager/secrets/pagerduty-{s}.key"
                                                        for s in ("primary", "secondary", "management")}
    # pages, and only pages, also reach the incident intake, its bearer token read from a file
    hooks = {r["name"]: r["webhook_configs"] for r in config["receivers"] if "webhook_configs" in r}
    assert hooks == {"oncall": [{
        "url": "http://airflow-apiserver:8080/gamesre/incidents/alertmanager", "send_resolved": True, "max_alerts": 0,
        "http_config": {"authorization": {"type": "Bearer",
                                          "credentials_file": "/etc/alertmanager/secrets/incident-intake-token"}}}]}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["prometheus"]["scrape"].pop("kubelet"), "prometheus.scrape: job 'kubelet' is missing"),
    (lambda r: r["prometheus"]["scrape"]["node"].update(timeout="45s"),
     "prometheus.scrape.node.timeout: 45s is longer than the interval 30s"),
    (lambda r: r["thresholds"]["high_load"].update(slo="capacity"),
     "thresholds.high_load.slo: no SLO 'capacity'"),
    (lambda r: r["thresholds"]["action_latency"].update(slo="availability"),
     "thresholds.action_latency.slo: SLO 'availability' is not counted from one histogram bucket"),
    (lambda r: r["routing"]["team_channels"].pop("matchmaking"),
     "routing.team_channels: team 'matchmaking' has no channel"),
    (lambda r: r["routing"]["team_channels"].update({"sre": "sre-tickets"}),
     "routing.team_channels.sre: String should match pattern"),
    (lambda r: r["escalation"].reverse(), "escalation: levels must come in order of strictly increasing `after`"),
    (lambda r: r["escalation"][0].update(pagerduty="tertiary"), "escalation[0].pagerduty: 'tertiary' is not one of"),
    (lambda r: r["thresholds"]["filesystem"].update(page=0.5), "thresholds.filesystem.page: 0.5 must be below ticket"),
    (lambda r: r["thresholds"]["quota"].update(ticket=1.5), "thresholds.quota.ticket: Input should be less than 1"),
    (lambda r: r.update(pager="x"), "pager: unknown field"),
])
def test_a_bad_spec_is_refused_naming_the_field(edit: Any, message: str) -> None:
    raw = copy.deepcopy(raw_spec())
    edit(raw)
    assert message in errors_of(raw)


def test_the_real_spec_is_valid() -> None:
    src = load_alerting()
    assert src.spec.escalation[0].after == "30m" and src.spec.escalation[1].after == "1h"
    assert src.spec.routing.oncall_channel == "#sre-oncall"
