"""Every consumer of the metric contract uses only what include/config/metrics.yaml defines."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from gamesre.core.contract import load_contract
from gamesre.slo.spec import load_slos

REPO = Path(__file__).resolve().parents[2]
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "bool", "offset", "rate", "increase", "irate", "clamp_min", "clamp_max", "vector", "scalar",
    "absent", "absent_over_time", "max_over_time", "min_over_time", "avg_over_time", "last_over_time",
    "sum_over_time", "count_over_time", "hour", "minute", "days_in_month", "time", "clamp", "histogram_quantile",
    "le", "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name series (not functions, keywords, labels or strings)."""
    no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    no_strings = re.sub(r"\b\d+(?:\.\d+)?[eE][-+]?\d+\b", "0", no_strings)  # 1e-05 is a number
    no_labels = re.sub(r"\{[^}]*\}", "{}", no_strings)
    no_grouping = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", no_labels)
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_grouping))
    durations = {t for t in tokens if re.fullmatch(r"\d*[smhdwy]", t)}
    return {t for t in tokens - PROMQL_WORDS - durations if not re.fullmatch(r"[smhdwy]", t)}


def test_slo_specs_use_only_contract_series() -> None:
    series = load_contract().series_index()
    for slo in load_slos():
        for path, selector in slo.selectors():
            assert selector.metric in series, f"{slo.name} {path}: {selector.metric}"


def test_generated_rules_use_only_contract_series_and_their_own_recordings() -> None:
    series = set(load_contract().series_index())
    groups = yaml.safe_load((REPO / "include" / "prometheus" / "slo_rules.yml").read_text())["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    used = set()
    for g in groups:
        for rule in g["rules"]:
            used |= metric_names(rule["expr"])
    unknown = used - series - recorded
    assert not unknown, f"rules use series outside the contract: {sorted(unknown)}"
    assert used & series, "the rules read no contract series at all"


def test_the_probe_finds_names_it_should() -> None:
    assert metric_names('sum(rate(game_x_total{code="200"}[5m])) by (instance) / on() group_left foo:bar') == {
        "game_x_total", "foo:bar"}


def test_every_runbook_url_points_at_an_existing_runbook_section() -> None:
    groups = yaml.safe_load((REPO / "include" / "prometheus" / "slo_rules.yml").read_text())["groups"]
    urls = {r[k]["runbook_url"] for g in groups for r in g["rules"] if "alert" in r
            for k in ("labels", "annotations") if "runbook_url" in r.get(k, {})}
    assert urls
    for url in urls:
        path, _, anchor = url.partition("#")
        doc = REPO / path
        assert doc.is_file(), url
        headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
                    for h in re.findall(r"^#+ (.+)$", doc.read_text(), re.M)}
        assert not anchor or anchor in headings, f"{url}: no heading #{anchor}"
