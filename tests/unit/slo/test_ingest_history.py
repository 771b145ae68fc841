"""The ledger does not depend on how a history is cut into ingests (issue: scrape gaps, restarts, partial ingests).

Generated counter histories: several series per selector, scrape gaps of one series and of all series (often
right at a chunk or run boundary), counter resets, series born and ending inside the range, jittered scrapes
at different intervals. Each history is ingested in one call, in chunks of a random size, and in runs at
random boundaries with random pauses (runs that did not happen, caught up by the next, as the slo_ingest DAG
does). The three ledgers must be the same row for row, and equal to the rows computed from the whole history
by tests/fakes/counter_history.expected_rows.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesre.slo.ingest import catch_up_start, ingest_slo
from gamesre.slo.spec import Slo, load_slos
from tests.fakes.counter_history import CounterSeries, FakePrometheus, MemoryLedger, expected_rows

T0 = 1_767_225_600  # minute-aligned: the history starts an hour before the ledger
START = T0 + 3600
CATALOG = load_slos()
MINUTE = 60


def scrape(rng: np.random.Generator, *, born: float, ends: float, interval: int, gaps: list[tuple[float, float]],
           resets: list[float], rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A counter scraped every `interval` s (jittered) from `born` to `ends`; it keeps counting through the gaps."""
    ticks = np.arange(born, ends, interval, dtype=np.float64)
    ticks = ticks + rng.uniform(0, 0.4 * interval, ticks.size)
    ticks = np.round(ticks, 3)
    values, value, reset_at = [], 0.0, sorted(resets)
    for t in ticks:
        while reset_at and reset_at[0] <= t:
            reset_at.pop(0)
            value = 0.0  # the process restarted: its counter starts again from zero
        value += float(rng.integers(0, rate + 1))
        values.append(value)
    keep = np.array([not any(a <= t < b for a, b in gaps) for t in ticks], dtype=bool)
    return ticks[keep], np.array(values)[keep]


@st.composite
def histories(draw: st.DrawFn) -> dict:
    minutes = draw(st.integers(min_value=10, max_value=150), label="minutes")
    end = START + minutes * MINUTE
    chunk = draw(st.integers(min_value=1, max_value=40), label="chunk minutes") * MINUTE
    runs = sorted(set(draw(st.lists(st.integers(min_value=1, max_value=minutes - 1), max_size=30), label="runs")))
    boundaries = [START + r * MINUTE for r in runs]
    anchors = [*boundaries, *range(START, end, chunk)]

    def gap() -> st.SearchStrategy[tuple[float, float]]:
        near = st.builds(lambda a, d: a + d, st.sampled_from(anchors), st.integers(min_value=-400, max_value=400))
        anywhere = st.integers(min_value=T0, max_value=end)
        return st.tuples(st.one_of(near, anywhere), st.integers(min_value=10, max_value=45 * MINUTE)).map(
            lambda g: (float(g[0]), float(g[0] + g[1])))

    common = draw(st.lists(gap(), max_size=2), label="gaps of every series")
    series = []
    for instance in range(draw(st.integers(min_value=1, max_value=3), label="instances")):
        for code in ("200", "500"):
            born = draw(st.one_of(st.just(T0), st.integers(min_value=T0, max_value=end)), label="born")
            ends = draw(st.one_of(st.just(end + 120), st.integers(min_value=born, max_value=end + 120)), label="ends")
            own = draw(st.lists(gap(), max_size=2), label="own gaps")
            resets = draw(st.lists(st.integers(min_value=T0, max_value=end), max_size=2), label="resets")
            t, v = scrape(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), born=born, ends=ends,
                          interval=draw(st.sampled_from([5, 15, 30, 60]), label="interval"), gaps=common + own,
                          resets=[float(r) for r in resets], rate=draw(st.integers(0, 40), label="rate"))
            series.append(CounterSeries({"instance": f"i{instance}", "code": code}, t, v))
    paused = draw(st.lists(st.booleans(), min_size=len(boundaries), max_size=len(boundaries)), label="paused")
    return {"end": end, "chunk": chunk, "boundaries": boundaries, "paused": paused, "series": series,
            "left_open": draw(st.booleans(), label="Prometheus 3 range selectors")}


def fake_prometheus(slo: Slo, series: list[CounterSeries], left_open: bool) -> FakePrometheus:
    """Total: every series; good: the code=200 ones; bad (error-rate): the code=500 ones."""
    sli = slo.sli
    part = sli.bad_selectors() if sli.uses_bad else sli.good_selectors()  # type: ignore[union-attr]
    wanted = "500" if sli.uses_bad else "200"  # type: ignore[union-attr]
    return FakePrometheus({sli.total_selectors()[0].promql(): series,  # type: ignore[union-attr]
                           part[0].promql(): [s for s in series if s.labels["code"] == wanted]}, left_open=left_open)


def ingest_in_runs(slo: Slo, prom: FakePrometheus, ledger: MemoryLedger, history: dict) -> None:
    """Runs ending at each boundary (unless paused) and at the end; each starts where the ledger stops, as the
    DAG's catch-up does, but never before the ledger's first minute."""
    ends = [b for b, paused in zip(history["boundaries"], history["paused"], strict=True) if not paused]
    previous = START
    for run_end in [*ends, history["end"]]:
        extent = ledger.ledger_extent(slo.name)
        begin = max(START, catch_up_start(extent[1] if extent else None, previous, run_end, 90 * 86400))
        if run_end > begin:
            ingest_slo(slo, prom, ledger, begin, run_end)
        previous = run_end


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories(), name=st.sampled_from(["availability", "error-rate"]))
def test_the_ledger_is_the_same_however_the_history_is_cut_and_equals_the_truth(history: dict, name: str) -> None:
    slo = CATALOG[name]
    prom = fake_prometheus(slo, history["series"], history["left_open"])
    end = history["end"]
    whole, chunked, runs = MemoryLedger(), MemoryLedger(), MemoryLedger()
    ingest_slo(slo, prom, whole, START, end, chunk=end - START)
    ingest_slo(slo, prom, chunked, START, end, chunk=history["chunk"])
    ingest_in_runs(slo, prom, runs, history)

    part = [s for s in history["series"] if s.labels["code"] == ("500" if name == "error-rate" else "200")]
    truth = expected_rows(history["series"], part, START, end, good_is_bad=name == "error-rate")
    assert whole.table(name) == truth
    assert chunked.table(name) == truth
    assert runs.table(name) == truth
