"""The chaos game-day report for people: Markdown, HTML, JUnit XML and Slack text from stored experiment runs.

Pure: runs, the game-day record and the score history come in as the JSON-safe dicts the SRE store keeps;
out come strings and PNG bytes. Nothing here reads a file, the network or Airflow.

The order everywhere is "what needs a person first": a fault that may still be injected, then fail, aborted,
error (and any verdict this module does not know), refused, pass, dry_run, skipped. A recovery that failed,
or an injection without a recorded recovery, is said loudly in every format, because a fault must never be
left injected unnoticed.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from gamesre.reports import document
from gamesre.reports.charts import chart_text, figure_png
from gamesre.reports.document import (
    Block,
    BulletList,
    Chart,
    Document,
    Heading,
    Link,
    Paragraph,
    Span,
    Strong,
    Table,
    Tone,
    safe_url,
)
from gamesre.reports.text import as_text, one_line

KST = ZoneInfo("Asia/Seoul")

Run = Mapping[str, Any]

# Attention order; a verdict not listed here ranks with "error" (an unknown outcome is never good news).
VERDICT_ORDER = ("fail", "aborted", "error", "invalid", "refused", "pass", "dry_run", "skipped")
# Nothing was measured against the system (an invalid request never got that far either).
UNSCORED_VERDICTS = frozenset({"invalid", "refused", "skipped", "dry_run"})
_PROBLEM_VERDICTS = frozenset({"fail", "aborted", "error"})

VERDICT_EMOJI = {
    "pass": ":white_check_mark:",
    "fail": ":x:",
    "aborted": ":octagonal_sign:",
    "error": ":boom:",
    "invalid": ":warning:",
    "refused": ":no_entry:",
    "skipped": ":fast_forward:",
    "dry_run": ":test_tube:",
}

RecoveryState = Literal["recovered", "failed", "unknown", "not_needed"]


# ---------------------------------------------------------------------------------------------------------------
# Scores and ordering


def gameday_score(runs: Iterable[Run]) -> float | None:
    """The game day's resilience score: Σ weight × score / Σ weight over the runs that measured something.

    Runs without a score, and refused / skipped / dry-run runs, do not count; a weight of 0 leaves a run out.
    A missing weight counts as 1. None when no run counts (no evidence is not a score of 100 or of 0).
    """
    total_weight = 0.0
    weighted = 0.0
    for run in runs:
        score = _float(run.get("score"))
        if score is None or run.get("verdict") in UNSCORED_VERDICTS:
            continue
        weight = _float(run.get("weight"))
        weight = 1.0 if weight is None else weight
        if weight < 0:
            raise ValueError(f"run {run.get('id')!r} has a negative weight {weight}")
        total_weight += weight
        weighted += weight * score
    return None if total_weight == 0 else weighted / total_weight


def recovery_state(run: Run) -> RecoveryState:
    """Whether the run's fault is gone: recovered, failed (still injected), unknown (injected, no record), or
    not_needed (nothing was ever injected)."""
    recovery = run.get("recovery")
    if isinstance(recovery, Mapping):
        return "recovered" if recovery.get("recovered") is True else "failed"
    timeline = run.get("timeline") or {}
    return "unknown" if timeline.get("injected_at") else "not_needed"


def still_injected(run: Run) -> list[str]:
    """What may still be injected after the run: the recovery's `remaining`, else the run's targets."""
    recovery = run.get("recovery") or {}
    remaining = [as_text(x) for x in recovery.get("remaining") or []]
    return remaining or [as_text(x) for x in run.get("targets") or []]


def _verdict(run: Run) -> str:
    return str(run.get("verdict") or "error")


def _verdict_rank(verdict: str) -> int:
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else VERDICT_ORDER.index("error")


def order_runs(runs: Iterable[Run]) -> list[Run]:
    """Runs in attention order: possibly-still-injected first, then by verdict, lowest score first."""
    def key(run: Run) -> tuple[int, int, float, str]:
        loud = recovery_state(run) in ("failed", "unknown")
        score = _float(run.get("score"))
        return (0 if loud else 1, _verdict_rank(_verdict(run)), math.inf if score is None else score,
                str(run.get("experiment") or ""))

    return sorted(runs, key=key)


def verdict_counts(runs: Iterable[Run]) -> list[tuple[str, int]]:
    """(verdict, count) in attention order, only the verdicts that occur."""
    counts = Counter(_verdict(r) for r in runs)
    return sorted(counts.items(), key=lambda kv: (_verdict_rank(kv[0]), kv[0]))


# ---------------------------------------------------------------------------------------------------------------
# Small formatting helpers


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        f = float(value)
        return None if math.isnan(f) else f
    return None




def _parse_time(value: object) -> datetime | None:
    """An aware datetime from an ISO string (naive means UTC), a datetime or epoch seconds; else None."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str) and value:
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif (f := _float(value)) is not None:
        try:
            return datetime.fromtimestamp(f, UTC)
        except (OverflowError, OSError, ValueError):  # an epoch no calendar holds is no time at all
            return None
    else:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _kst(value: object, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    t = _parse_time(value)
    return "-" if t is None else f"{t.astimezone(KST).strftime(fmt)} KST"


def _score(value: object) -> str:
    f = _float(value)
    return "-" if f is None else f"{f:.1f}"


def _pct(value: object) -> str:
    f = _float(value)
    return "-" if f is None else f"{f:.1f}%"


def _weight(value: object) -> str:
    f = _float(value)
    return "1 (default)" if f is None else f"{f:g}"


def _value(value: object) -> str:
    f = _float(value)
    if f is None:
        return "no data"
    return f"{f:,.0f}" if abs(f) >= 1000 else f"{f:.4g}"


def _duration(seconds: object) -> str:
    s = _float(seconds)
    if s is None:
        return "-"
    if s < 120:
        return f"{s:g} s"
    if s < 7200:
        return f"{s / 60:.4g} min"
    return f"{s / 3600:.4g} h"


def _result(passed: object) -> str:
    return "pass" if passed is True else "FAIL" if passed is False else "no data"


def _fault(run: Run) -> str:
    fault = run.get("fault") or {}
    kind = as_text(fault.get("kind")) or "-"
    out = kind if fault.get("duration_s") is None else f"{kind} for {_duration(fault.get('duration_s'))}"
    params = fault.get("params") or {}
    if isinstance(params, Mapping) and params:
        out += " (" + ", ".join(f"{k}={as_text(v)}" for k, v in sorted(params.items())) + ")"
    return out


def _blast_radius(run: Run) -> str:
    br = run.get("blast_radius") or {}
    if not br:
        return "-"
    requested, resolved, of = br.get("requested"), br.get("resolved"), br.get("of")
    parts = [] if requested is None else [as_text(requested)]
    if resolved is not None:
        parts.append(f"{resolved} of {of}" if of is not None else str(resolved))
    return " → ".join(parts) or "-"


def _run_seconds(run: Run) -> float:
    timeline = run.get("timeline") or {}
    start = _parse_time(timeline.get("requested_at")) or _parse_time(timeline.get("injected_at"))
    end = _parse_time(timeline.get("finished_at")) or _parse_time(timeline.get("recovered_at"))
    return max((end - start).total_seconds(), 0.0) if start and end else 0.0


def _probe_counts(probe: Mapping[str, Any]) -> tuple[int, int, int]:
    """(samples, failed, no data) for one probe."""
    samples = [s for s in probe.get("samples") or [] if isinstance(s, list | tuple) and len(s) >= 2]
    failed = sum(1 for s in samples if len(s) > 2 and s[2] is False)
    no_data = sum(1 for s in samples if _float(s[1]) is None or (len(s) > 2 and s[2] is None))
    return len(samples), failed, no_data


_TOLERANCE = re.compile(r"^\s*(>=|<=|>|<|≥|≤)\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_RANGE = re.compile(r"^\s*(?:between\s+)?([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?:\.\.|and|to)\s*"
                    r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$", re.IGNORECASE)


def probe_bounds(probe: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(low, high) a probe's value must stay within: its `bounds` dict, else its tolerance when that is a plain
    comparison (">= 0.99", "< 250", "0.5..2" or "between 0.5 and 2"); (None, None) when neither says."""
    bounds = probe.get("bounds")
    if isinstance(bounds, Mapping):
        return _float(bounds.get("low")), _float(bounds.get("high"))
    tolerance = as_text(probe.get("tolerance"))
    if m := _TOLERANCE.match(tolerance):
        op, number = m.group(1), float(m.group(2))
        return (number, None) if op in (">=", ">", "≥") else (None, number)
    if m := _RANGE.match(tolerance):
        low, high = sorted((float(m.group(1)), float(m.group(2))))
        return low, high
    return None, None


# ---------------------------------------------------------------------------------------------------------------
# Charts


def _fault_window(run: Run) -> tuple[datetime, datetime] | None:
    """When the fault was in place: from injection to the abort, the planned end, or recovery / finish."""
    timeline = run.get("timeline") or {}
    start = _parse_time(timeline.get("injected_at"))
    if start is None:
        return None
    duration = _float((run.get("fault") or {}).get("duration_s"))
    ends = [t for t in (_parse_time(timeline.get("aborted_at")),
                        None if duration is None else start + timedelta(seconds=duration)) if t is not None]
    if not ends:
        ends = [t for t in (_parse_time(timeline.get("recovered_at")), _parse_time(timeline.get("finished_at")))
                if t is not None]
    return (start, min(ends)) if ends and min(ends) > start else None


def timeline_chart(run: Run) -> bytes:
    """A PNG: one panel per probe with its values over time (KST), the tolerance, failed and missing samples,
    the fault window shaded, and lines at injection, abort and recovery."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    probes = [p for p in run.get("probes") or [] if isinstance(p, Mapping)]
    panels = probes or [{}]
    fig = Figure(figsize=(10, 1.0 + 2.2 * len(panels)), dpi=100)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    timeline = run.get("timeline") or {}
    markers = [(_parse_time(timeline.get(key)), label, color) for key, label, color in
               (("injected_at", "injected", "tab:orange"), ("aborted_at", "aborted", "tab:red"),
                ("recovered_at", "recovered", "tab:green"))]
    window = _fault_window(run)
    has_time = any(t for t, _, _ in markers)
    for i, (ax, probe) in enumerate(zip(axes, panels, strict=True)):
        samples = [s for s in probe.get("samples") or [] if isinstance(s, list | tuple) and len(s) >= 2
                   and _parse_time(s[0]) is not None]
        times = [mdates.date2num(_parse_time(s[0])) for s in samples]
        values = [_float(s[1]) for s in samples]
        ys = [math.nan if v is None else v for v in values]
        first = i == 0
        if window is not None:
            ax.axvspan(mdates.date2num(window[0]), mdates.date2num(window[1]), color="tab:orange", alpha=0.12,
                       label="fault window" if first else None)
        if samples:
            ax.plot(times, ys, color="tab:blue", linewidth=1.4, marker=".", markersize=3)
            failed = [(t, v) for t, v, s in zip(times, values, samples, strict=True)
                      if len(s) > 2 and s[2] is False and v is not None]
            if failed:
                ax.plot([t for t, _ in failed], [v for _, v in failed], linestyle="none", marker="x",
                        color="tab:red", markersize=7, label="failed sample")
            missing = [t for t, v in zip(times, values, strict=True) if v is None]
            if missing:
                ax.plot(missing, [0.03] * len(missing), linestyle="none", marker="|", color="grey", markersize=10,
                        transform=ax.get_xaxis_transform(), label="no data")
        low, high = probe_bounds(probe)
        if low is not None and high is not None:
            ax.axhspan(low, high, color="tab:green", alpha=0.08)
        for bound in (low, high):
            if bound is not None:
                ax.axhline(bound, color="tab:green", linestyle="--", linewidth=1)
        for t, label, color in markers:
            if t is not None:
                ax.axvline(mdates.date2num(t), color=color, linewidth=1.2, label=label if first else None)
        name = chart_text(probe.get("name") or "no probes recorded")
        tolerance = chart_text(probe.get("tolerance") or "")
        ax.set_title(f"{name}  ({tolerance})" if tolerance else name, fontsize=9, loc="left")
        if not samples:
            ax.text(0.5, 0.5, "no samples", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.grid(alpha=0.3)
        if samples or has_time:
            ax.xaxis_date(tz=KST)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=KST))
        if first and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right")
    axes[-1].set_xlabel("time (KST)")
    fig.suptitle(chart_text(f"{run.get('experiment') or '?'}: {_verdict(run)}"), fontsize=11)
    fig.tight_layout()
    return figure_png(fig)


def _is_gameday_entry(entry: Mapping[str, Any]) -> bool:
    return entry.get("kind") == "gameday" or "suite" in entry or not entry.get("experiment")


def score_trend_chart(history: Iterable[Mapping[str, Any]], *, gameday: Mapping[str, Any] | None = None) -> bytes:
    """A PNG: the score of each past run over time, one line per experiment, failed runs crossed, and the
    game-day scores (history entries without an experiment, plus `gameday`) as a dashed black line."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    series: dict[str, list[tuple[float, float, str]]] = {}
    for entry in list(history) + ([dict(gameday, kind="gameday")] if gameday else []):
        t = _parse_time(entry.get("finished_at") or entry.get("started_at"))
        score = _float(entry.get("score"))
        if t is None or score is None:
            continue
        name = "game day" if _is_gameday_entry(entry) else as_text(entry.get("experiment"))
        series.setdefault(name, []).append((mdates.date2num(t), score, as_text(entry.get("verdict"))))

    fig = Figure(figsize=(10, 4.5), dpi=100)
    ax = fig.subplots()
    for name in sorted(series, key=lambda n: (n == "game day", n)):
        points = sorted(series[name])
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if name == "game day":
            ax.plot(xs, ys, color="black", linestyle="--", marker="*", markersize=10, label="game day")
        else:
            ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.4, label=chart_text(name))
        bad = [(x, y) for x, y, v in points if v in _PROBLEM_VERDICTS]
        if bad:
            ax.plot([x for x, _ in bad], [y for _, y in bad], linestyle="none", marker="x", color="tab:red",
                    markersize=8)
    if series:
        ax.xaxis_date(tz=KST)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=KST))
        ax.legend(fontsize=8, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no scored runs yet", transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.set_ylim(0, 105)
    ax.set_ylabel("resilience score")
    ax.set_xlabel("date (KST)")
    ax.set_title("Resilience score per run (failed, aborted, error crossed)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


# ---------------------------------------------------------------------------------------------------------------
# The report as one document, written as Markdown and HTML (so both always say the same)

# A row's colour in HTML; a verdict not listed here is shown like a failure (an unknown outcome is never good news).
VERDICT_TONE: dict[str, Tone] = {"fail": "fail", "aborted": "fail", "error": "fail", "invalid": "", "refused": "warn",
                                 "pass": "pass", "dry_run": "muted", "skipped": "muted"}


def _summary_line(runs: Sequence[Run], gameday: Mapping[str, Any] | None) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(runs)) or "none"
    line = f"{len(runs)} experiment{'' if len(runs) == 1 else 's'}: {counts}"
    score = _float(gameday.get("score")) if gameday else None
    computed = gameday_score(runs)
    if score is not None:
        line += f" · game-day score {score:.1f}"
    elif computed is not None:
        line += f" · game-day score {computed:.1f} (weighted over the scored runs)"
    else:
        line += " · game-day score - (no run was scored)"
    if gameday and gameday.get("verdict"):
        line += f" · game-day verdict {as_text(gameday.get('verdict'))}"
    return line


def _loud_recovery(run: Run) -> str | None:
    state = recovery_state(run)
    name = as_text(run.get("experiment")) or "?"
    if state == "failed":
        recovery = run.get("recovery") or {}
        attempts = recovery.get("attempts")
        detail = one_line(recovery.get("detail"), 300)
        tried = f"after {attempts} attempt{'' if attempts == 1 else 's'}" if attempts else ""
        why = "; ".join(x for x in (tried, detail) if x)
        return (f"RECOVERY FAILED for {name}, still injected: {', '.join(still_injected(run)) or 'unknown'}"
                + (f" ({why})" if why else ""))
    if state == "unknown":
        injected = _kst((run.get("timeline") or {}).get("injected_at"))
        return (f"NO RECOVERY RECORDED for {name}: the fault was injected at {injected}; check "
                f"{', '.join(still_injected(run)) or 'its targets'}")
    return None


def _history_line(run: Run, history: Sequence[Mapping[str, Any]]) -> str | None:
    past = [h for h in history if h.get("experiment") == run.get("experiment") and h.get("id") != run.get("id")
            and not _is_gameday_entry(h)][-5:]
    if not past:
        return None
    steps = [f"{_score(h.get('score')) if _float(h.get('score')) is not None else as_text(h.get('verdict'))} "
             f"({_kst(h.get('finished_at'), '%m-%d')})" for h in past]
    return "Score history: " + " → ".join([*steps, f"{_score(run.get('score'))} (this run)"])


def _steady_table(steady: Mapping[str, Any]) -> Table:
    rows = tuple((as_text(p.get("name")), _value(p.get("value")), as_text(p.get("tolerance")) or "-",
                  _result(p.get("passed")))
                 for p in steady.get("probes") or [] if isinstance(p, Mapping))
    return Table(("probe", "value", "tolerance", "result"), rows)


def _run_blocks(run: Run, history: Sequence[Mapping[str, Any]]) -> list[Block]:
    verdict = _verdict(run)
    blocks: list[Block] = [Heading(2, f"{as_text(run.get('experiment')) or '?'}: {verdict.upper()}")]
    facts = [as_text(run.get("title")), f"service {as_text(run.get('service')) or '-'}",
             f"backend {as_text(run.get('backend')) or '-'}", f"environment {as_text(run.get('environment')) or '-'}",
             f"requested by {as_text(run.get('requested_by')) or '-'}"]
    if run.get("dry_run"):
        facts.append("dry run")
    blocks.append(Paragraph(" · ".join(f for f in facts if f)))
    blocks.append(Paragraph(f"Verdict {verdict}, score {_score(run.get('score'))} (weight "
                            f"{_weight(run.get('weight'))}): {one_line(run.get('reason')) or 'no reason recorded'}"))
    if loud := _loud_recovery(run):
        blocks.append(Paragraph(loud, "alert"))
    if line := _history_line(run, history):
        blocks.append(Paragraph(line))

    gates = sorted((g for g in run.get("gates") or [] if isinstance(g, Mapping)), key=lambda g: g.get("passed") is True)
    if gates:
        items = []
        for g in gates:
            reason = one_line(g.get("reason")) or "no reason recorded"
            evidence = g.get("evidence")
            tail = f"; evidence: {one_line(evidence, 200)}" if evidence else ""
            state = "passed" if g.get("passed") is True else "refused"
            items.append(f"{state}: {reason} (gate {as_text(g.get('gate'))}){tail}")
        blocks.append(BulletList("Gates", items))

    timeline = run.get("timeline") or {}
    steps = tuple(f"{label}: {_kst(timeline.get(key))}" for key, label in
                  (("requested_at", "requested"), ("injected_at", "injected"), ("aborted_at", "aborted"),
                   ("recovered_at", "recovered"), ("finished_at", "finished")) if timeline.get(key))
    targets = ", ".join(as_text(t) for t in run.get("targets") or []) or "-"
    blocks.append(BulletList("Fault", (f"fault: {_fault(run)}", f"targets: {targets}",
                                       f"blast radius: {_blast_radius(run)}", *steps)))

    before, after = run.get("steady_before"), run.get("steady_after")
    if isinstance(before, Mapping):
        blocks.append(Paragraph(f"Steady state before: {_result(before.get('passed'))}"))
        blocks.append(_steady_table(before))
    else:
        blocks.append(Paragraph("Steady state before: not checked"))
    if isinstance(after, Mapping):
        within, allowed = _float(after.get("recovered_within_s")), after.get("recovery_time_s")
        back = (f"back to steady state after {_duration(within)} (allowed {_duration(allowed)})" if within is not None
                else f"not back to steady state within {_duration(allowed)}")
        blocks.append(Paragraph(f"Steady state after: {_result(after.get('passed'))}, {back}"))
        blocks.append(_steady_table(after))
    else:
        blocks.append(Paragraph("Steady state after: not checked"))

    abort = run.get("abort")
    if isinstance(abort, Mapping):
        at = abort.get("at") or timeline.get("aborted_at")
        blocks.append(Paragraph(f"Aborted by rule {as_text(abort.get('rule')) or '?'} at {_kst(at)}: "
                                f"{one_line(abort.get('reason')) or 'no reason recorded'}"))

    state = recovery_state(run)
    recovery = run.get("recovery") or {}
    if state == "recovered":
        attempts = recovery.get("attempts")
        detail = one_line(recovery.get("detail"))
        blocks.append(Paragraph("Recovery: recovered" + (f" after {attempts} attempt{'' if attempts == 1 else 's'}"
                                                         if attempts else "") + (f": {detail}" if detail else "")))
    elif state == "not_needed":
        blocks.append(Paragraph("Recovery: nothing was injected"))
    # "failed" and "unknown" were already said loudly above

    probes = [p for p in run.get("probes") or [] if isinstance(p, Mapping)]
    if probes:
        rows = []
        for p in probes:
            n, failed, no_data = _probe_counts(p)
            rows.append((as_text(p.get("name")), as_text(p.get("tolerance")) or "-", _weight(p.get("weight")), str(n),
                         str(failed), str(no_data), _pct(p.get("success_pct"))))
        blocks.append(Paragraph("Probes during the experiment"))
        blocks.append(Table(("probe", "tolerance", "weight", "samples", "failed", "no data", "success"), rows))
    if probes or timeline.get("injected_at"):
        blocks.append(Chart(f"probe values over time for {as_text(run.get('experiment'))}",
                            partial(timeline_chart, run)))
    url = safe_url(run.get("run_url"))
    blocks.append(Paragraph((Link("Airflow run", url),) if url else "Airflow run: no link recorded"))
    return blocks


def _document(runs: Iterable[Run], gameday: Mapping[str, Any] | None,
              history: Iterable[Mapping[str, Any]]) -> Document:
    ordered = order_runs(runs)
    past = tuple(history)
    if gameday:
        suite = one_line(gameday.get("suite"))
        title = (f"Chaos game day{' ' + suite if suite else ''}: "
                 f"{_kst(gameday.get('started_at') or gameday.get('finished_at'), '%Y-%m-%d %H:%M')}")
    else:
        started = min((t for t in (_parse_time((r.get("timeline") or {}).get("requested_at")) for r in ordered)
                       if t is not None), default=None)
        title = "Chaos experiments" + (f": {_kst(started, '%Y-%m-%d %H:%M')}" if started else "")
    blocks: list[Block] = [Paragraph(_summary_line(ordered, gameday))]
    if gameday:
        blocks.append(Paragraph(f"Game day {as_text(gameday.get('id'))}: {_kst(gameday.get('started_at'))} to "
                                f"{_kst(gameday.get('finished_at'))}"))
    blocks.extend(Paragraph(loud, "alert") for loud in (_loud_recovery(r) for r in ordered) if loud)
    blocks.append(Table(
        ("experiment", "verdict", "score", "fault", "targets", "blast radius", "reason"),
        [(as_text(r.get("experiment")), _verdict(r), _score(r.get("score")), _fault(r),
          ", ".join(as_text(t) for t in r.get("targets") or []) or "-", _blast_radius(r),
          one_line(r.get("reason"), 200)) for r in ordered],
        row_tones=[VERDICT_TONE.get(_verdict(r), "fail") for r in ordered]))
    known = {h.get("id") for h in past}
    current = tuple({"id": r.get("id"), "experiment": r.get("experiment"), "verdict": r.get("verdict"),
                     "score": r.get("score"), "finished_at": (r.get("timeline") or {}).get("finished_at")}
                    for r in ordered if r.get("id") not in known)
    if past or gameday:
        blocks.append(Chart("resilience score trend", partial(score_trend_chart, past + current, gameday=gameday)))
    for run in ordered:
        blocks.extend(_run_blocks(run, past))
    return Document(" ".join(title.split()), blocks)


def render_markdown(runs: Iterable[Run], *, gameday: Mapping[str, Any] | None = None,
                    history: Iterable[Mapping[str, Any]] = ()) -> str:
    """The report as Markdown: summary, a table of experiments, then one section per experiment, problems first."""
    return document.render_markdown(_document(runs, gameday, history))


def render_html(runs: Iterable[Run], *, gameday: Mapping[str, Any] | None = None,
                history: Iterable[Mapping[str, Any]] = ()) -> str:
    """The report as one self-contained HTML page (inline CSS, charts as base64 PNG); all text escaped."""
    return document.render_html(_document(runs, gameday, history))


# ---------------------------------------------------------------------------------------------------------------
# JUnit XML and Slack

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(value: object) -> str:
    """Text XML 1.0 can hold (ElementTree escapes markup but writes control characters as they are)."""
    return _XML_INVALID.sub("\ufffd", as_text(value))


def _failure_text(run: Run) -> str:
    lines = [f"verdict: {_verdict(run)}", f"reason: {one_line(run.get('reason'))}"]
    abort = run.get("abort")
    if isinstance(abort, Mapping):
        lines.append(f"aborted by {as_text(abort.get('rule'))} at {as_text(abort.get('at'))}: "
                     f"{one_line(abort.get('reason'))}")
    for p in run.get("probes") or []:
        if isinstance(p, Mapping):
            n, failed, no_data = _probe_counts(p)
            lines.append(f"probe {as_text(p.get('name'))} ({as_text(p.get('tolerance'))}): "
                         f"{_pct(p.get('success_pct'))} success, {failed} failed / {no_data} no data of {n}")
    if loud := _loud_recovery(run):
        lines.append(loud)
    if url := safe_url(run.get("run_url")):
        lines.append(f"run: {url}")
    return "\n".join(lines)


def junit_xml(runs: Iterable[Run], *, suite_name: str) -> str:
    """One <testsuite> with one <testcase classname="chaos.<service>" name="<experiment>"> per run.

    fail -> <failure>, aborted -> <failure type="aborted">, error (or an unknown verdict) -> <error>,
    refused / skipped / dry_run -> <skipped>; a run whose recovery failed or was never recorded also gets a
    <failure type="recovery">, whatever its verdict.
    """
    ordered = order_runs(runs)
    suite = ET.Element("testsuite", name=_xml(suite_name))
    failures = errors = skipped = 0
    total_time = 0.0
    score = gameday_score(ordered)
    if score is not None:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="gameday_score", value=f"{score:.2f}")
    for run in ordered:
        verdict = _verdict(run)
        seconds = _run_seconds(run)
        total_time += seconds
        case = ET.SubElement(suite, "testcase", classname=_xml(f"chaos.{as_text(run.get('service')) or 'unknown'}"),
                             name=_xml(run.get("experiment") or run.get("id") or "?"), time=f"{seconds:.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in (("verdict", verdict), ("score", run.get("score")), ("weight", run.get("weight")),
                           ("run_id", run.get("id")), ("backend", run.get("backend")),
                           ("run_url", safe_url(run.get("run_url")))):
            if value is not None:
                ET.SubElement(props, "property", name=key, value=_xml(value))
        reason = _xml(one_line(run.get("reason")) or verdict)
        recovery_failed = recovery_state(run) in ("failed", "unknown")
        if verdict == "fail":
            ET.SubElement(case, "failure", message=reason, type="fail").text = _xml(_failure_text(run))
            failures += 1
        elif verdict == "aborted":
            ET.SubElement(case, "failure", message=reason, type="aborted").text = _xml(_failure_text(run))
            failures += 1
        elif verdict == "invalid":  # the request was wrong: an error of whoever asked, not of the system
            ET.SubElement(case, "error", message=reason, type="invalid").text = reason
            errors += 1
        elif verdict in UNSCORED_VERDICTS:
            ET.SubElement(case, "skipped", message=_xml(f"{verdict}: {reason}"))
            skipped += 1
        elif verdict != "pass":
            message = reason if verdict == "error" else _xml(f"unknown verdict {verdict!r}: {reason}")
            ET.SubElement(case, "error", message=message, type=_xml(verdict)).text = _xml(_failure_text(run))
            errors += 1
        if recovery_failed and verdict not in ("fail", "aborted"):
            ET.SubElement(case, "failure", message=_xml(_loud_recovery(run)), type="recovery")
            failures += 1
    suite.set("tests", str(len(ordered)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{total_time:.3f}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def slack_summary(runs: Iterable[Run], *, gameday: Mapping[str, Any] | None = None,
                  report_url: str | None = None) -> str:
    """Slack mrkdwn: a header with counts and the game-day score, a :rotating_light: line per fault that may
    still be injected, then one line per experiment, problems first (within Slack's length, see render_slack)."""
    ordered = order_runs(runs)
    suite = one_line(gameday.get("suite")) if gameday else ""
    head: list[Span] = [Strong("Chaos experiments" if not gameday else f"Chaos game day {suite}" if suite
                               else "Chaos game day"), f" · {_summary_line(ordered, gameday)}"]
    if url := safe_url(report_url):
        head += [" · ", Link("full report", url)]
    lines: list[Block] = [Paragraph(tuple(head))]
    for run in ordered:
        state = recovery_state(run)
        injected = ", ".join(still_injected(run))
        if state == "failed":
            detail = one_line((run.get("recovery") or {}).get("detail"), 200)
            lines.append(Paragraph((":rotating_light: still injected: ", Strong(as_text(run.get("experiment"))),
                                    f" → {injected}" + (f" ({detail})" if detail else ""))))
        elif state == "unknown":
            lines.append(Paragraph((":rotating_light: still injected? no recovery recorded for ",
                                    Strong(as_text(run.get("experiment"))), f", check {injected}")))
    for run in ordered:
        verdict = _verdict(run)
        line: list[Span] = [f"{VERDICT_EMOJI.get(verdict, ':grey_question:')} ", Strong(as_text(run.get("experiment"))),
                            f" ({as_text(run.get('service'))}) {verdict} · score {_score(run.get('score'))}"]
        if reason := one_line(run.get("reason"), 300):
            line.append(f" · {reason}")
        if isinstance(abort := run.get("abort"), Mapping):
            line.append(f" · aborted by {as_text(abort.get('rule'))}")
        if url := safe_url(run.get("run_url")):
            line += [" · ", Link("run", url)]
        lines.append(Paragraph(tuple(line)))
    return document.render_slack(Document("", lines))
