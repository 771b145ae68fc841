"""The error-budget report for people: an SLO table, a burn-down chart, and the ranges that burned most budget."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gamesre.reports.document import (
    BulletList,
    Document,
    Facts,
    Table,
    Tone,
    render_markdown,
    render_slack,
)
from gamesre.slo.budget import Ledger, SloSnapshot, compute_snapshot, minute_bad_units
from gamesre.slo.spec import Slo

KST = ZoneInfo("Asia/Seoul")


def _pct(x: float | None, digits: int = 2) -> str:
    return "no data" if x is None else f"{100 * x:.{digits}f}%"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


SLO_HEADER = ("SLO", "SLI", "target", "window", "budget left", "left (adjusted)", "burn 1h", "burn 6h", "burn 3d",
              "coverage", "state")
STATE_TONE: dict[str, Tone] = {"rollback": "fail", "deploy_freeze": "fail", "fast_burn": "fail", "no_data": "error",
                               "slow_burn": "warn", "ticket": "warn", "normal": "pass"}


def slo_rows_table(rows: Sequence[tuple[SloSnapshot, str]]) -> Table:
    """SLI, target, budget remaining raw and adjusted, burn rates, coverage and state, one SLO a row."""
    cells = []
    for snap, state in rows:
        br = snap.burn_rates
        cells.append((snap.name, _pct(snap.sli, 3), _pct(snap.target, 2), snap.window, _pct(snap.budget_remaining, 1),
                      _pct(snap.budget_remaining_adjusted, 1), _rate(br.get("1h")), _rate(br.get("6h")),
                      _rate(br.get("3d")), _pct(snap.coverage, 1), state))
    return Table(SLO_HEADER, cells, row_tones=[STATE_TONE.get(state, "") for _, state in rows])


def slo_table(rows: Sequence[tuple[SloSnapshot, str]]) -> str:
    """The SLO table in Markdown (the CLI's `budget`)."""
    return render_markdown(Document("", [slo_rows_table(rows)])).strip()


@dataclass(frozen=True)
class BurnRange:
    """A stretch of consecutive hours that consumed budget, with its share of the whole budget."""

    slo: str
    start: datetime
    end: datetime
    budget_share: float  # of the SLO's whole budget for its window
    bad_units: float

    def describe(self) -> str:
        s, e = self.start.astimezone(KST), self.end.astimezone(KST)
        return (f"{self.slo}: {s:%Y-%m-%d %H:%M}-{e:%H:%M} KST consumed {_pct(self.budget_share, 1)} of the budget "
                f"({self.bad_units:,.0f} bad units)")


def hourly_bad_units(slo: Slo, ledger: Ledger, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(hour starts, bad units per hour) over [start, end): events for occurrences, minutes otherwise."""
    hours = np.arange(start - start % 3600, end, 3600, dtype=np.int64)
    sel = (ledger.minutes >= start) & (ledger.minutes < end)
    m = ledger.minutes[sel]
    bad = minute_bad_units(slo, ledger.good[sel], ledger.total[sel], ledger.spans[sel])
    idx = np.searchsorted(hours, m, side="right") - 1
    per_hour = np.bincount(idx, weights=bad, minlength=hours.size)[: hours.size] if m.size else np.zeros(hours.size)
    return hours, per_hour


def top_burn_ranges(slo: Slo, ledger: Ledger, snapshot: SloSnapshot, limit: int = 3) -> list[BurnRange]:
    """The stretches of consecutive burning hours that consumed the largest shares of the budget."""
    if not snapshot.budget_total:
        return []
    start = int(datetime.fromisoformat(snapshot.window_start).timestamp())
    hours, bad = hourly_bad_units(slo, ledger, start, snapshot.at_epoch)
    # an hour "burns" when it consumed budget faster than the sustainable pace (burn rate above 1)
    pace = snapshot.budget_total / max(snapshot.window_minutes / 60, 1)
    burning = bad > pace
    ranges: list[BurnRange] = []
    i = 0
    while i < hours.size:
        if not burning[i]:
            i += 1
            continue
        j = i
        while j + 1 < hours.size and burning[j + 1]:
            j += 1
        units = float(bad[i : j + 1].sum())
        ranges.append(BurnRange(slo.name, datetime.fromtimestamp(int(hours[i]), UTC),
                                datetime.fromtimestamp(int(hours[j]) + 3600, UTC),
                                units / snapshot.budget_total, units))
        i = j + 1
    return sorted(ranges, key=lambda r: r.budget_share, reverse=True)[:limit]


def burn_down_series(slo: Slo, ledger: Ledger, at: datetime, exclusions: Sequence[tuple[int, int]] = (),
                     points: int = 60) -> tuple[list[datetime], list[float | None], list[float | None]]:
    """Budget remaining (raw, adjusted) evaluated at `points` instants across the SLO's window ending at `at`."""
    first = compute_snapshot(slo, ledger, at, exclusions)
    start = datetime.fromisoformat(first.window_start)
    span = (at - start).total_seconds()
    times, raw, adjusted = [], [], []
    for k in range(1, points + 1):
        t = start + timedelta(seconds=span * k / points)
        snap = compute_snapshot(slo, ledger, t, exclusions) if k < points else first
        times.append(t)
        raw.append(snap.budget_remaining)
        adjusted.append(snap.budget_remaining_adjusted)
    return times, raw, adjusted


def burn_down_chart(series: Mapping[str, tuple[list[datetime], list[float | None], list[float | None]]],
                    path: Path, title: str) -> Path:
    """A PNG with one line per SLO: budget remaining (adjusted solid, raw dotted) over the window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    for name, (times, raw, adjusted) in series.items():
        local = mdates.date2num([t.astimezone(KST) for t in times])
        line, = ax.plot(local, [np.nan if v is None else 100 * v for v in adjusted], label=name, linewidth=1.8)
        ax.plot(local, [np.nan if v is None else 100 * v for v in raw], linestyle=":", color=line.get_color(),
                linewidth=1)
    for level, label in ((50, "deploy freeze"), (20, "automatic rollback")):
        ax.axhline(level, color="grey", linestyle="--", linewidth=0.8)
        ax.text(ax.get_xlim()[0], level + 1, label, fontsize=8, color="grey")
    ax.set_ylabel("error budget remaining (%)")
    ax.set_title(title)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=KST))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def incident_line(incident: Mapping[str, Any]) -> str:
    """One incident of the window: id, severity, title, status, and the budget it cost where the postmortem says."""
    opened = incident["opened_at"].astimezone(KST)
    cost = ((incident.get("details") or {}).get("postmortem") or {}).get("budget") or {}
    spent = [f"{slo} {c['budget_share']:.1%}" for slo, c in sorted(cost.items())
             if c.get("budget_share") is not None and c["budget_share"] > 0]
    status = incident["status"] if incident["status"] != "resolved" else "resolved"
    return (f"{incident['id']} {incident['severity'].upper()} {incident['title']} ({status}, opened "
            f"{opened:%m-%d %H:%M} KST)" + (f": budget {', '.join(spent)}" if spent else
                                             (": budget not known until it is resolved" if status != "resolved"
                                              else ": no budget lost")))


def report_document(at: datetime, rows: Sequence[tuple[SloSnapshot, str]], ranges: Sequence[BurnRange],
                    service_states: Mapping[str, str], incidents: Sequence[Mapping[str, Any]] = ()) -> Document:
    """The daily report: the services' states, the SLO table, the time ranges that consumed the most budget, and
    the incidents of the window with the budget each cost."""
    local = at.astimezone(KST)
    services = ", ".join(f"{name}: {state}" for name, state in sorted(service_states.items()))
    burned = [r.describe() for r in ranges] or ["no hour burned faster than the budget allows"]
    return Document(f"Error-budget report {local:%Y-%m-%d %H:%M} KST", [
        Facts([("Services", services)]),
        slo_rows_table(rows),
        BulletList("Time ranges that consumed the most budget", burned),
        BulletList("Incidents in the window (the budget each cost)",
                   [incident_line(i) for i in incidents] or ["no incident"]),
    ])


def report_text(at: datetime, rows: Sequence[tuple[SloSnapshot, str]], ranges: Sequence[BurnRange],
                service_states: Mapping[str, str], incidents: Sequence[Mapping[str, Any]] = ()) -> str:
    """The daily report as a Slack message."""
    return render_slack(report_document(at, rows, ranges, service_states, incidents))
