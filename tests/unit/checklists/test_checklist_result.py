"""ItemResult: a JSON round trip that changes nothing, evidence made JSON-safe, and the report order."""
from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.checklists.result import REPORT_ORDER, ItemResult, order_for_report, worst_status

CHECKED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def result(item_id: str = "daily-alerts", status: str = "pass", **evidence: object) -> ItemResult:
    return ItemResult(item_id, "Alerts", "daily", status, "summary", dict(evidence), "sre", CHECKED)  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    evidence=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    status=st.sampled_from(REPORT_ORDER),
    checked=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    summary=st.text(max_size=50),
)
def test_a_result_survives_a_json_round_trip(evidence: dict, status: str, checked: datetime, summary: str) -> None:
    original = ItemResult("weekly-noisy-alerts", "Noisy alerts", "weekly", status, summary, evidence,  # type: ignore[arg-type]
                          "sre", checked)
    text = original.to_json()
    back = ItemResult.from_json(text)
    assert back == original
    assert back.to_json() == text


def test_evidence_is_made_json_safe() -> None:
    r = result(
        count=np.int64(3), share=np.float64(0.25), flag=np.bool_(True), missing=float("nan"), huge=math.inf,
        at=datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=9))), when=pd.Timestamp("2026-03-01", tz="UTC"),
        never=pd.NaT, series=pd.Series([1.0, 2.0]), array=np.array([[1, 2], [3, 4]]), pair=(1, "a"), tags={"b", "a"},
    )
    assert r.evidence == {
        "count": 3, "share": 0.25, "flag": True, "missing": None, "huge": None, "at": "2026-03-01T00:00:00Z",
        "when": "2026-03-01T00:00:00Z", "never": None, "series": [1.0, 2.0], "array": [[1, 2], [3, 4]],
        "pair": [1, "a"], "tags": ["a", "b"],
    }
    json.loads(r.to_json())


def test_evidence_without_a_json_form_is_refused_naming_the_path() -> None:
    with pytest.raises(TypeError, match=r"evidence\.rows\[1\]: object has no JSON form"):
        result(rows=[1, object()])
    with pytest.raises(TypeError, match=r"evidence\.when: naive datetime"):
        result(when=datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="DataFrame has no JSON form"):
        result(frame=pd.DataFrame({"a": [1]}))


def test_status_and_time_are_checked() -> None:
    with pytest.raises(ValueError, match="status 'ok' is not one of fail, error, warn, manual, pass"):
        result(status="ok")
    with pytest.raises(ValueError, match="checked_at must be an aware datetime"):
        ItemResult("x", "t", "daily", "pass", "s", {}, "sre", datetime(2026, 1, 1))
    seoul = ItemResult("x", "t", "daily", "pass", "s", {}, "sre", datetime(2026, 3, 2, 10, tzinfo=timezone(
        timedelta(hours=9))))
    assert seoul.checked_at == CHECKED and seoul.checked_at.tzinfo == UTC
    assert seoul.to_dict()["checked_at"] == "2026-03-02T01:00:00Z"


def test_from_dict_refuses_other_shapes() -> None:
    doc = result().to_dict()
    with pytest.raises(ValueError, match=r"missing \['owner'\], unknown \['team'\]"):
        ItemResult.from_dict({**{k: v for k, v in doc.items() if k != "owner"}, "team": "sre"})
    with pytest.raises(ValueError, match="field summary: expected a string, got int"):
        ItemResult.from_dict({**doc, "summary": 3})


def test_the_report_puts_failing_items_first_then_file_order() -> None:
    results = [result("a", "pass"), result("b", "warn"), result("c", "fail"), result("d", "manual"),
               result("e", "error"), result("f", "fail"), result("g", "warn")]
    ordered = order_for_report(results, ["g", "f", "e", "d", "c", "b", "a"])
    assert [(r.status, r.item_id) for r in ordered] == [
        ("fail", "f"), ("fail", "c"), ("error", "e"), ("warn", "g"), ("warn", "b"), ("manual", "d"), ("pass", "a")]
    # without an item order, the given order is kept within a status; unknown ids follow the known ones
    assert [r.item_id for r in order_for_report(results)] == ["c", "f", "e", "b", "g", "d", "a"]
    assert [r.item_id for r in order_for_report(results, ["g"]) if r.status == "warn"] == ["g", "b"]


@given(st.lists(st.tuples(st.sampled_from(REPORT_ORDER), st.integers(0, 5)), max_size=20))
def test_the_report_order_is_a_sorted_permutation(pairs: list[tuple[str, int]]) -> None:
    results = [result(f"item-{n}-{i}", status) for i, (status, n) in enumerate(pairs)]
    ordered = order_for_report(results)
    assert sorted(map(id, ordered)) == sorted(map(id, results))
    ranks = [REPORT_ORDER.index(r.status) for r in ordered]
    assert ranks == sorted(ranks)


def test_worst_status_follows_the_report_order() -> None:
    assert worst_status(["pass", "manual", "warn"]) == "warn"
    assert worst_status(["warn", "error"]) == "error"
    assert worst_status([]) == "pass"
    assert worst_status(["pass", "mystery"]) == "mystery"  # unknown ranks first: fail safe
