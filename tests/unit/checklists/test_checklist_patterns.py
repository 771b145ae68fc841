"""Budget spend patterns: KST weekday and hour, the top hours, and the weekly evaluator's evidence."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from gamesre.checklists.analytics import (
    budget_spend_by_minute,
    spend_by_period,
    spend_by_weekday_hour,
    top_spending_periods,
)
from gamesre.checklists.inputs import InputData
from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from gamesre.core.time import KST
from gamesre.slo.spec import SloCatalog
from tests.unit.checklists.conftest import AT, flat_ledger, with_bad


def kst(*args: int) -> int:
    return int(datetime(*args, tzinfo=KST).timestamp())  # type: ignore[misc]


WEEK_START = kst(2026, 2, 23)  # Monday
WEEK_END = kst(2026, 3, 2)


def spend_at(*points: tuple[int, float]) -> pd.Series:
    minutes = np.arange(WEEK_START, WEEK_END, 60, dtype=np.int64)
    spend = pd.Series(0.0, index=pd.Index(minutes, name="minute"))
    for minute, units in points:
        spend.loc[minute] = units
    return spend


def test_spend_lands_on_its_kst_weekday_and_hour() -> None:
    wednesday_evening = kst(2026, 2, 25, 20, 15)  # 11:15 UTC
    sunday_last_minute = kst(2026, 3, 1, 23, 59)  # 14:59 UTC, still Sunday in Seoul
    table = spend_by_weekday_hour(spend_at((wednesday_evening, 5.0), (sunday_last_minute, 2.0)))
    assert table.shape == (7, 24)
    assert table.iat[2, 20] == 5.0 and table.iat[6, 23] == 2.0
    assert float(table.to_numpy().sum()) == 7.0
    assert spend_by_weekday_hour(pd.Series([], dtype=float)).to_numpy().sum() == 0


def test_the_top_hours_and_days_are_kst_aligned() -> None:
    spend = spend_at((kst(2026, 2, 24, 9, 0), 1.0), (kst(2026, 2, 24, 9, 59), 1.0), (kst(2026, 2, 27, 21, 30), 5.0),
                     (kst(2026, 2, 28, 3, 0), 0.5))
    top = top_spending_periods(spend, n=2)
    assert list(top["start"]) == [kst(2026, 2, 27, 21), kst(2026, 2, 24, 9)]
    assert list(top["end"] - top["start"]) == [3600, 3600]
    assert list(top["units"]) == [5.0, 2.0]
    assert len(top_spending_periods(spend, n=10)) == 3  # hours that spent nothing are not listed
    days = spend_by_period(spend, "1D")
    assert days[kst(2026, 2, 24)] == 2.0 and days[kst(2026, 2, 27)] == 5.0 and days[kst(2026, 2, 28)] == 0.5
    assert len(days) == 7


def test_a_no_data_bad_minute_spends_budget(slos: SloCatalog) -> None:
    slo = slos["concurrent-sessions"].model_copy(update={"no_data": "bad"})
    frame = flat_ledger(WEEK_START, WEEK_START + 3600, 1.0)
    spend = budget_spend_by_minute(slo, frame, WEEK_START, WEEK_START + 7200)
    assert float(spend.iloc[:60].sum()) == 0 and float(spend.iloc[60:].sum()) == 60


def test_the_weekly_evaluator_reports_shares_of_the_window_budget(checklists: ChecklistSpec,
                                                                   slos: SloCatalog) -> None:
    frame = flat_ledger(WEEK_START, WEEK_END, 1000.0)
    burst = kst(2026, 2, 25, 20)
    frame = with_bad(frame, burst, burst + 3600, 990.0)  # 600 bad events in one evening hour
    ledgers = {s.name: frame if s.name == "availability" else flat_ledger(WEEK_START, WEEK_END, 1.0) for s in slos}
    item = checklists.get("weekly-budget-patterns")
    r = run_item(item, {"slos": slos, "ledgers": InputData(ledgers, source="store"), "exclusions": {}}, AT)
    availability = next(s for s in r.evidence["slos"] if s["slo"] == "availability")
    # the 30-day budget at the week's traffic: 0.1% of 1000 events/minute x 43,200 minutes
    assert availability["window_budget"] == pytest.approx(43_200)
    assert availability["spent"] == 600
    assert availability["top_hours"][0] == {"start": "2026-02-25T11:00:00Z", "local": "2026-02-25 20:00 KST",
                                            "units": 600.0, "window_budget_share": pytest.approx(600 / 43_200)}
    assert availability["by_weekday"][2] == 600 and availability["by_hour"][20] == 600
    assert availability["weekday_hour"][2][20] == 600
    assert availability["status"] == "pass"  # 1.4% of the budget in an hour: below the 2% warn
    assert r.status == "pass"
    worse = with_bad(frame, burst, burst + 3600, 980.0)  # 1,200 bad events: 2.8% of the budget
    r = run_item(item, {"slos": slos, "ledgers": {**ledgers, "availability": worse}, "exclusions": {}}, AT)
    assert r.status == "warn"
    assert r.summary == ("availability: 1 hour(s) spent at least 2% of the rolling-30d budget, worst "
                         "2026-02-25 20:00 KST (2.8%)")
