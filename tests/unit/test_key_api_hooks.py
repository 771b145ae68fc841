"""The hooks of APIs whose connection password is a key (PagerDuty Events v2, the status page): the base URL from the
connection, the vendor's own without a host, and the status page's page id from the extra."""
from __future__ import annotations

import json

import pytest

from gamesre.airflow.hooks.pagerduty import PagerDutyEventsHook, api_url
from gamesre.airflow.hooks.statuspage import StatusPageHook
from gamesre.integrations.pagerduty import EVENTS_URL
from gamesre.integrations.statuspage import API_URL


@pytest.mark.parametrize(("host", "schema", "port", "want"), [
    (None, None, None, "https://vendor.example"),
    ("", "http", 8090, "https://vendor.example"),
    ("sink", "http", 8090, "http://sink:8090"),
    ("events.example.com", None, None, "https://events.example.com"),
    ("https://proxy.example.com/pd/", None, None, "https://proxy.example.com/pd"),
])
def test_api_url(host: str | None, schema: str | None, port: int | None, want: str) -> None:
    assert api_url(host, schema, port, "https://vendor.example") == want


def test_the_hooks_read_their_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_DEFAULT", json.dumps({"conn_type": "http", "password": "k" * 32}))
    monkeypatch.setenv("AIRFLOW_CONN_STATUSPAGE_DEFAULT", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": 18090, "schema": "http", "password": "key",
        "extra": {"page_id": "gamestatus"}}))
    pager = PagerDutyEventsHook().get_conn()
    assert (pager.url, pager.routing_key) == (EVENTS_URL, "k" * 32)
    page = StatusPageHook().get_conn()
    assert (page.url, page.page_id, page.api_key) == ("http://127.0.0.1:18090", "gamestatus", "key")
    monkeypatch.setenv("AIRFLOW_CONN_STATUSPAGE_DEFAULT", json.dumps({"conn_type": "http", "password": "key"}))
    with pytest.raises(ValueError, match="page id"):
        StatusPageHook().get_conn()
    monkeypatch.setenv("AIRFLOW_CONN_STATUSPAGE_DEFAULT", json.dumps({"conn_type": "http", "password": "key",
                                                                      "extra": {"page_id": "p"}}))
    assert StatusPageHook().get_conn().url == API_URL
