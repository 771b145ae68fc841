"""The series selectors behind the dashboards' panel queries (what the freshness checklist item checks)."""
from __future__ import annotations

import pytest

from gamesre.core.contract import load_contract
from gamesre.observability.panel_queries import (
    PanelQueryError,
    dashboard_selectors,
    load_dashboards,
    recorded_series,
    selectors,
)

SERIES = {"game_action_requests_total", "up", "slo:sli_error:ratio_rate1h", "ALERTS"}


def test_selectors_keep_matchers_set_variables_to_all_and_skip_functions_and_strings() -> None:
    expr = ('sum by (code) (rate(game_action_requests_total{track=~"$track",code!="200"}[$__rate_interval])) '
            '/ on() group_left sum(up) or label_replace(vector(0), "up", "$1", "ALERTS", "(.*)")')
    assert selectors(expr, SERIES) == ['game_action_requests_total{track=~".*",code!="200"}', "up"]


def test_a_matcher_value_with_braces_or_names_inside_stays_one_selector() -> None:
    expr = 'ALERTS{alertname=~"up|Watchdog",summary="a } b"} and slo:sli_error:ratio_rate1h{slo="x"} > 1'
    assert selectors(expr, SERIES) == ['ALERTS{alertname=~"up|Watchdog",summary="a } b"}',
                                       'slo:sli_error:ratio_rate1h{slo="x"}']


def test_the_same_selector_is_listed_once_with_every_place_that_reads_it() -> None:
    boards: list[dict] = [{"uid": "a", "panels": [{"title": "P1", "targets": [{"expr": "up"}, {"expr": "sum(up)"}]},
                                      {"title": "row", "type": "row"}]},
              {"uid": "b", "panels": [{"title": "P2", "targets": [{"expr": 'up{job="x"}'}]}]}]
    assert dashboard_selectors(SERIES, boards) == {"up": ["a / P1", "a / P1"], 'up{job="x"}': ["b / P2"]}


def test_every_committed_dashboard_query_reads_a_known_series() -> None:
    series = load_contract().all_series() | recorded_series()
    read = dashboard_selectors(series)
    assert {"game-service-overview", "game-server-slo", "matchmaking-slo", "game-infrastructure"} == {
        place.split(" / ")[0] for places in read.values() for place in places}


def test_a_broken_dashboard_file_is_named(tmp_path) -> None:
    (tmp_path / "x.json").write_text('{"title": "no uid"}')
    with pytest.raises(PanelQueryError, match=r"x\.json: not a dashboard"):
        load_dashboards(tmp_path)
