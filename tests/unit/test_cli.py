"""`python -m gamesre`: the budget JSON the issue specifies, clear errors for bad input, rules --check."""
from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gamesre.cli import main
from gamesre.integrations.store import SREStore

AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def store_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'sre.db'}"
    store = SREStore(url)
    minutes = np.arange(int((AT - timedelta(days=2)).timestamp()), int(AT.timestamp()), 60)
    store.upsert_ledger("availability", [(int(m), 999.0, 1000.0) for m in minutes])  # 0.1% bad: burn rate 1
    return url


def test_budget_json_has_the_fields_per_slo(store_url: str, capsys) -> None:
    assert main(["budget", "--store", store_url, "--at", AT.isoformat(), "--json", "--slo", "availability",
                 "--slo", "latency"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out] == ["availability", "latency"]
    fields = {"name", "target", "window", "method", "sli", "budget_consumed", "budget_remaining",
              "budget_remaining_adjusted", "burn_rates", "state", "coverage"}
    assert all(fields <= set(o) for o in out)
    a = out[0]
    assert a["sli"] == pytest.approx(0.999) and a["burn_rates"]["1d"] == pytest.approx(1.0)
    assert set(a["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert out[1]["sli"] is None and out[1]["state"] == "no_data"  # no traffic: explicit, never NaN


def test_window_override_and_table_output(store_url: str, capsys) -> None:
    assert main(["budget", "--store", store_url, "--at", AT.isoformat(), "--window", "month",
                 "--slo", "availability"]) == 0
    text = capsys.readouterr().out
    assert "| availability |" in text and "calendar-month" in text


@pytest.mark.parametrize("args, message", [
    (["budget", "--slo", "nope"], "unknown SLO(s): nope"),
    (["budget", "--at", "yesterday"], "not an ISO 8601 time"),
    (["budget", "--at", "2026-11-26T09:00"], "has no UTC offset"),
])
def test_bad_input_is_a_clear_error(store_url: str, capsys, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) if "--at" in args else contextlib.nullcontext():
        code = main([*args, "--store", store_url])
        assert code == 2
    assert message in capsys.readouterr().err


def test_rules_check_passes_on_the_committed_rules(capsys) -> None:
    assert main(["rules", "--check"]) == 0

