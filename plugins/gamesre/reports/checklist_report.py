"""The SLO checklist report for people: Markdown, HTML and Slack text with matplotlib charts, failing items first.

Pure: checklist results (gamesre.checklists.result.ItemResult) come in; out come strings and PNG bytes. Nothing
here reads a file, the network or Airflow.

Items are reported fail, error, warn, manual, pass, and within a status in the order given (pass the results
through `order_for_report` with the checklist file's order first to get that order). Evidence is rendered by its
shape, so a new item's evidence reads well without a change here: numbers and short mappings as facts, lists of
rows and per-SLO or per-service mappings as tables (capped, saying how many rows were left out), queries in code
spans, http(s) URLs as links, ISO instants in KST, and, chosen by the key's name, shares as percentages, burn
rates as multiples and seconds as durations. A few tables have curated columns, the ones people read first;
every other number stays in the stored evidence.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from gamesre.checklists.result import REPORT_ORDER, ItemResult, order_for_report
from gamesre.reports import document
from gamesre.reports.charts import chart_text, figure_png
from gamesre.reports.document import (
    SLACK_MAX_CHARS,
    Block,
    BulletList,
    Chart,
    Code,
    Document,
    Facts,
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

STATUS_EMOJI = {"fail": "❌", "error": "💥", "warn": "⚠️", "manual": "📝", "pass": "✅"}
SLACK_EMOJI = {"fail": ":x:", "error": ":boom:", "warn": ":warning:", "manual": ":memo:",
               "pass": ":white_check_mark:"}
STATUS_COLOR = {"fail": "#d62728", "error": "#9467bd", "warn": "#ff7f0e", "manual": "#1f77b4", "pass": "#2ca02c"}
STATUS_TONE: dict[str, Tone] = {"fail": "fail", "error": "error", "warn": "warn", "manual": "note", "pass": "pass"}

MAX_TABLE_ROWS = 10  # per table; the stored evidence keeps up to 50 and says how many there were
MAX_COLUMNS = 10
MAX_INLINE_VALUES = 8  # values of a list or mapping written on one line

# Chart names, also the suffix of the PNG files the DAG writes: keep them filename-safe.
STATUS_CHART = "status-overview"
ATTAINMENT_CHART = "attainment-{item_id}"
PATTERNS_CHART = "budget-patterns-{item_id}"

# Added by the runner to every result; reported apart (the data sources) or not at all (the summary says it).
_RUNNER_KEYS = frozenset({"check", "at", "period", "params", "inputs", "reasons", "exception"})
# Said elsewhere: thresholds on their own line, the assignee in the manual item's first line; `readable` and
# `layout` repeat numbers the report formats itself.
_SEPARATE_KEYS = frozenset({"thresholds", "assignee", "readable", "layout"})

# How a number is written, by the name of its key.
_PRECISE_SHARES = frozenset({"sli", "sli_raw", "target", "suggested_target", "error_ratio"})
_SHARES = frozenset({
    "coverage", "budget_consumed", "budget_consumed_day_ago", "budget_consumed_change", "budget_remaining",
    "success_rate", "change_failure_rate", "min_coverage", "min_success_rate", "warn_daily_consumption",
    "tighten_max_consumed", "warn_change_failure_rate", "share_in_state",
})
_RATES = frozenset({"burn_rate", "burn_rates"})
_SECONDS = frozenset({
    "duration", "median_duration", "max_duration", "total_duration", "seconds", "age", "lead_time_median",
    "lead_time_p90", "time_to_restore_median", "time_to_restore_max", "seconds_in_state", "mtta", "mttr",
    "mtta_median", "mttr_median",
})
_CODE_KEYS = frozenset({"query", "queries", "rule", "series", "labels", "expr"})

# The columns people read first, per (check, evidence key); a nested list is `key.column`. Stored evidence comes
# back with its keys sorted (ItemResult.to_json, the store's JSON), so the evaluators' own order is not kept: a
# table without curated columns shows its naming column, then `status`, then the others alphabetically.
_RUN_COLUMNS = ("run_id", "experiment", "service", "verdict", "score", "started_at", "finished_at")
_DEPLOY_COLUMNS = ("id", "service", "version", "outcome", "requested_at", "finished_at", "rolled_back_at", "run_url")
_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("slo_attainment", "slos"): ("slo", "status", "sli", "target", "burn_rate", "budget_consumed", "coverage",
                                 "unit", "reason", "owner"),
    ("budget_burn", "slos"): ("slo", "status", "state_day_ago", "state", "budget_consumed_change",
                              "budget_consumed", "budget_remaining", "burn_rates", "coverage", "owner"),
    ("budget_patterns", "slos"): ("slo", "status", "spent", "unit", "window_budget", "window_budget_share",
                                  "reason", "owner"),
    ("budget_patterns", "slos.top_hours"): ("local", "units", "window_budget_share"),
    ("slo_target_review", "reviews"): ("slo", "status", "recommendation", "target", "suggested_target",
                                       "confident", "judged_months", "exhausted_months", "reason", "owner"),
    ("slo_target_review", "reviews.months"): ("start", "sli", "budget_consumed", "coverage", "met", "reason"),
    ("budget_policy_review", "rows"): ("scope", "name", "status", "entries", "time_in_state", "share_in_state"),
    ("budget_policy_review", "rows.entry_times"): ("at", "previous", "state"),
    ("alerts_now", "firing"): ("alertname", "severity", "service", "slo", "since", "for"),
    ("alerts_now", "resolved"): ("alertname", "series", "start", "end", "duration"),
    ("noisy_alerts", "alerts"): ("alertname", "noisy", "fires", "median_duration", "max_duration",
                                 "total_duration", "series"),
    ("silent_alerts", "never_fired"): ("alertname", "rule", "severity"),
    ("alerts_without_slo_impact", "alerts"): ("alertname", "firings", "without_impact", "with_impact", "unknown"),
    ("alerts_without_slo_impact", "firings"): ("alertname", "series", "start", "duration", "slos", "impact",
                                               "bad_minutes", "judged_minutes"),
    ("series_freshness", "stale"): ("name", "kind", "query", "newest", "age"),
    ("scrape_targets", "down"): ("job", "instance", "health", "last_scrape", "last_error"),
    ("scrape_targets", "jobs"): ("job", "up", "total"),
    ("sample_gaps", "gaps"): ("series", "start", "end", "seconds", "edge"),
    ("chaos_status", "left_injected"): ("service", "target", "fault", "injected_at", "run_id"),
    ("chaos_status", "last_runs"): _RUN_COLUMNS,
    ("chaos_status", "failed_runs"): _RUN_COLUMNS,
    ("chaos_status", "running"): _RUN_COLUMNS,
    ("chaos_results", "runs"): _RUN_COLUMNS,
    ("chaos_results", "failed_hypotheses"): ("experiment", "probe", "failures", "runs"),
    ("resilience_inputs", "failed_hypotheses"): ("experiment", "probe", "failures", "runs"),
    ("deploy_pipeline", "stuck"): _DEPLOY_COLUMNS,
    ("deploy_pipeline", "failed_or_rolled_back"): _DEPLOY_COLUMNS,
    ("deploy_pipeline", "recent"): _DEPLOY_COLUMNS,
    ("deploy_success", "services"): ("service", "finished", "promoted", "rolled_back", "timed_out", "failed",
                                     "success_rate", "rollbacks"),
    ("dora", "overall"): ("deploys", "deploys_per_week", "lead_time_median", "lead_time_p90", "finished",
                          "failures", "change_failure_rate", "restores", "time_to_restore_median",
                          "time_to_restore_max", "start", "end"),
    ("dora", "services"): ("service", "deploys", "deploys_per_week", "lead_time_median", "lead_time_p90",
                           "change_failure_rate", "failures", "finished", "time_to_restore_median", "restores"),
    ("stack_versions", "components"): ("component", "verdict", "running", "pinned", "pin_source", "detail"),
    ("runbook_freshness", "stale"): ("path", "age_days"),
    ("incident_response", "incidents"): ("id", "severity", "title", "status", "opened_at", "mtta", "mttr"),
    ("incident_response", "unacknowledged"): ("id", "severity", "title", "opened_at"),
    ("postmortems", "overdue"): ("id", "severity", "title", "postmortem_owner", "postmortem_due"),
    ("postmortems", "due_soon"): ("id", "severity", "title", "postmortem_owner", "postmortem_due"),
}
# The column that names a row: first in a table, and carried into the tables of the row's nested lists.
_LABEL_COLUMNS = ("slo", "name", "scope", "alertname", "service", "experiment", "component", "job", "series", "id")
# Evidence that names what is wrong comes before the rest (then alphabetical): the problem before the context.
_FIRST_KEYS = ("left_injected", "stuck", "firing", "down", "missing_jobs", "stale", "gaps", "failed_or_rolled_back",
               "failed_runs", "failed_hypotheses", "noisy", "never_fired", "slos", "reviews", "rows", "overall")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ---------------------------------------------------------------------------------------------------------------
# Small formatting helpers


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None




def _human(key: str) -> str:
    return key.replace("_", " ")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _duration(seconds: float) -> str:
    """`45s`, `12m`, `2h 05m`, `3d 4h` (as the evaluators write durations)."""
    s = round(seconds)
    sign, s = ("-", -s) if s < 0 else ("", s)
    if s < 60:
        out = f"{s}s"
    elif s < 3600:
        out = f"{s // 60}m" + (f" {s % 60:02d}s" if s % 60 and s < 600 else "")
    elif s < 86_400:
        out = f"{s // 3600}h {s % 3600 // 60:02d}m"
    else:
        out = f"{s // 86_400}d {s % 86_400 // 3600}h"
    return sign + out


def _kind(key: str) -> str:
    if key in _PRECISE_SHARES:
        return "share3"
    if key in _SHARES or key.endswith("_share"):
        return "share"
    if key in _RATES:
        return "rate"
    if key in _SECONDS:
        return "seconds"
    if key in _CODE_KEYS:
        return "code"
    return "plain"


def _number(value: float, kind: str) -> str:
    if kind == "share3":
        return f"{100 * value:.3f}%"
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "rate":
        return f"{value:.2f}x"
    if kind == "seconds":
        return _duration(value)
    if float(value).is_integer() or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 1e-9:  # float noise (a least-squares slope of flat scores), not a number to read
        return "0"
    return f"{value:.4g}"


_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$")


def _kst(value: datetime) -> str:
    return f"{value.astimezone(KST):%Y-%m-%d %H:%M} KST"


def _instant(text: str) -> str | None:
    """An ISO 8601 instant with an offset as KST text; None for any other string."""
    if not _ISO_INSTANT.match(text):
        return None
    try:
        return _kst(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


_DURATION_KEY = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _key_order(key: object) -> tuple[float, str]:
    """Mapping keys in reading order: windows by length (`5m` before `1h` before `1d`), the rest by name."""
    m = _DURATION_KEY.match(str(key))
    return (int(m.group(1)) * _UNIT_SECONDS[m.group(2)] if m else math.inf, str(key))


# ---------------------------------------------------------------------------------------------------------------
# Inline text: plain strings, code spans and links


_Inline = tuple[Span, ...]


def _short_url(url: str, limit: int = 60) -> str:
    bare = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    return bare if len(bare) <= limit else bare[: limit - 1] + "…"


def _string(key: str, value: str, limit: int = 200) -> Span:
    if _kind(key) == "code":
        return Code(one_line(value, 300))
    if url := safe_url(value):
        return Link(_short_url(url), url)
    return _instant(value) or one_line(value, limit)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_rows(value: object) -> bool:
    """A non-empty list of mappings: a table."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _is_series(value: object) -> bool:
    """A long list of numbers or a list of lists: chart material, not a table cell."""
    if not isinstance(value, list):
        return False
    return any(isinstance(v, list) for v in value) or (
        len(value) > MAX_INLINE_VALUES and all(_float(v) is not None or v is None for v in value))


def _joined(parts: Sequence[_Inline], total: int, limit: int) -> _Inline:
    out: list[Span] = []
    for i, part in enumerate(parts[:limit]):
        if i:
            out.append(", ")
        out.extend(part)
    if total > limit:
        out.append(f", +{total - limit} more")
    return tuple(out)


def _inline(key: str, value: Any, limit: int = MAX_INLINE_VALUES) -> _Inline:
    """One value written for people; its key says how (shares, rates, seconds, code)."""
    kind = _kind(key)
    if value is None:
        return ("-",)
    if isinstance(value, bool):
        return ("yes" if value else "no",)
    if isinstance(value, int | float):
        f = _float(value)
        return ("-",) if f is None else (_number(f, kind),)
    if isinstance(value, str):
        return (_string(key, value),)
    if isinstance(value, Mapping):
        if not value:
            return ("none",)
        if kind == "code":
            return (Code(one_line(value, 300)),)
        parts: list[_Inline] = []
        for k, v in sorted(value.items(), key=lambda kv: _key_order(kv[0])):  # the stored order is alphabetical
            # a value takes its own key's format when it has one (`target`), else its parent's (`burn_rates`)
            own = str(k) if _kind(str(k)) != "plain" else key
            if _is_scalar(v):
                parts.append((f"{k} ", *_inline(own, v)))
            elif isinstance(v, list) and all(_is_scalar(x) for x in v):
                parts.append((f"{k} [", *_joined([_inline(own, x) for x in v], len(v), limit), "]"))
            else:
                parts.append((f"{k} ", one_line(v, 80)))
        return _joined(parts, len(parts), limit)
    if isinstance(value, list):
        if not value:
            return ("none",)
        if not all(_is_scalar(v) for v in value):
            return (f"{len(value)} entr{'y' if len(value) == 1 else 'ies'} (in the stored evidence)",)
        return _joined([_inline(key, v) for v in value], len(value), limit)
    return (one_line(value, 200),)


# ---------------------------------------------------------------------------------------------------------------
# The report as one document, written as Markdown and HTML (so both always say the same)


def _title(cadence: str, period_label: str) -> str:
    return " ".join(f"{cadence.strip().capitalize()} SLO checklist, {period_label}".split())


def _counts_text(results: Sequence[ItemResult]) -> str:
    counts = Counter(r.status for r in results)
    if not results:
        return "no items were checked"
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in REPORT_ORDER) + f" ({_plural(len(results), 'item')})"


def _cell(row: Mapping[str, Any], column: str) -> _Inline:
    """A table cell; the evaluator's own text for a value wins (`age_text` says "no data" where age is None)."""
    companion = row.get(f"{column}_text", row.get("length") if column == "seconds" else None)
    if isinstance(companion, str) and companion:
        return (one_line(companion, 200),)
    return _inline(column, row.get(column))


def _table_blocks(check: str, path: str, title: str, rows: Sequence[Mapping[str, Any]], total: int | None,
                  lead: str | None = None) -> list[Block]:
    """A table of `rows` (at most MAX_TABLE_ROWS, saying how many of `total` were left out), then one table per
    nested list of rows, each row carrying the `lead` column that names its parent."""
    seen = list(dict.fromkeys(str(k) for row in rows for k in row))
    nested = [c for c in seen if any(_is_rows(row.get(c)) for row in rows)]
    plain = [c for c in seen if c not in nested and not any(_is_series(row.get(c)) for row in rows)]
    companions = {c for c in plain if c.endswith("_text") and c[:-5] in plain}
    if "seconds" in plain:
        companions.add("length")
    curated = _COLUMNS.get((check, path), ())
    if any(c in plain for c in curated):
        columns = [c for c in curated if c in plain]
    else:
        first = [c for c in (*_LABEL_COLUMNS, "status") if c in plain]
        columns = first + sorted(c for c in plain if c not in companions and c not in first)
    if lead and lead in plain:
        columns = [lead, *(c for c in columns if c != lead)]
    hidden = max(len(columns) - MAX_COLUMNS, 0)
    columns = columns[:MAX_COLUMNS]
    shown = rows[:MAX_TABLE_ROWS]
    whole = max(total or 0, len(rows))
    notes = []
    if whole > len(shown):
        notes.append(f"{whole - len(shown)} more row{'' if whole - len(shown) == 1 else 's'} not shown")
    if hidden:
        notes.append(f"{hidden} more column{'' if hidden == 1 else 's'} in the stored evidence")
    blocks: list[Block] = [Table(
        [_human(c) for c in columns], [[_cell(row, c) for c in columns] for row in shown], title=title,
        row_tones=[STATUS_TONE.get(as_text(row.get("status")), "") for row in shown], note="; ".join(notes))]
    label = next((c for c in (lead, *_LABEL_COLUMNS) if c and c in plain), None)
    for column in nested:
        children = [{**({label: row.get(label)} if label else {}), **child}
                    for row in rows for child in (row.get(column) or []) if isinstance(child, Mapping)]
        blocks.extend(_table_blocks(check, f"{path}.{column}", f"{title}: {_human(column)}", children, None,
                                    lead=label))
    return blocks


def _singular(key: str) -> str:
    return key[:-1] if key.endswith("s") and len(key) > 3 else key


def _evidence_blocks(result: ItemResult) -> list[Block]:
    """The item's own evidence (runner keys aside): facts first, then tables and long lists (what is wrong first,
    then by name), then the thresholds."""
    ev = result.evidence
    check = as_text(ev.get("check"))
    facts: list[tuple[str, _Inline]] = []
    rest: list[Block] = []
    for key in sorted(ev, key=lambda k: (_FIRST_KEYS.index(k) if k in _FIRST_KEYS else len(_FIRST_KEYS), k)):
        value = ev[key]
        if key in _RUNNER_KEYS or key in _SEPARATE_KEYS:
            continue
        if key.endswith("_total") and isinstance(ev.get(key[: -len("_total")]), list):
            continue  # said with its list
        total = _float(ev.get(f"{key}_total"))
        if _is_rows(value):
            rest.extend(_table_blocks(check, key, _human(key), value, None if total is None else int(total)))
        elif isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            head = _singular(key)
            rows = [{head: k, **v} for k, v in sorted(value.items(), key=lambda kv: _key_order(kv[0]))]
            rest.extend(_table_blocks(check, key, _human(key), rows, None, lead=head))
        elif isinstance(value, Mapping) and len(value) > 6 and all(_is_scalar(v) for v in value.values()):
            order = _COLUMNS.get((check, key), ())
            names = [k for k in order if k in value] + sorted(k for k in value if k not in order)
            rest.append(Table(("", "value"), [(_human(k), _inline(k, value[k])) for k in names], title=_human(key)))
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value) \
                and (key == "steps" or any(len(v) > 60 for v in value)):
            rest.append(BulletList(_human(key), [(_string(key, v, 400),) for v in value[:20]]
                                   + ([f"+{len(value) - 20} more"] if len(value) > 20 else []),
                                   numbered=key == "steps"))
        elif _is_series(value):
            facts.append((_human(key), (f"{len(value)} values (in the stored evidence)",)))
        else:
            shown = _inline(key, value, limit=12)
            if total is not None and isinstance(value, list) and total > len(value):
                shown += (f" ({int(total)} in all)",)
            facts.append((_human(key), shown))
    thresholds = ev.get("thresholds")
    said = {k: v for k, v in thresholds.items() if v is not None} if isinstance(thresholds, Mapping) else {}
    limits = [("thresholds", _inline("thresholds", said, limit=12))] if said else []
    if not rest:
        return [Facts(facts + limits)] if facts or limits else []
    return [*([Facts(facts)] if facts else []), *rest, *([Facts(limits)] if limits else [])]


def _inputs_block(inputs: object) -> BulletList | None:
    """Where the data came from: per input its source, queries (code) and links, or why it was unavailable."""
    if not isinstance(inputs, Mapping) or not inputs:
        return None
    items: list[_Inline] = []
    for name, doc in sorted(inputs.items(), key=lambda kv: str(kv[0])):
        if not isinstance(doc, Mapping):
            continue
        spans: list[Span] = [Code(str(name))]
        if source := one_line(doc.get("source"), 80):
            spans.append(f" from {source}")
        if "unavailable" in doc:
            spans.append(f": unavailable, {one_line(doc.get('unavailable'), 300)}")
        queries = [q for q in doc.get("queries") or [] if isinstance(q, str)]
        if queries:
            spans.append(" · queries ")
            spans.extend(_joined([(Code(one_line(q, 300)),) for q in queries], len(queries), 3))
        links = [u for u in (safe_url(x) for x in doc.get("links") or []) if u]
        if links:
            spans.append(" · ")
            spans.extend(_joined([(Link(_short_url(u), u),) for u in links], len(links), 3))
        items.append(tuple(spans))
    return BulletList("data", items) if items else None


def _item_blocks(result: ItemResult) -> list[Block]:
    emoji = f"{STATUS_EMOJI[result.status]} " if result.status in STATUS_EMOJI else ""
    blocks: list[Block] = [
        Heading(2, f"{emoji}{result.status.upper()} · {one_line(result.title, 200)}",
                STATUS_TONE.get(result.status, "")),
        Paragraph(("owner ", one_line(result.owner, 80), " · item ", Code(result.item_id), " · checked ",
                   _kst(result.checked_at)), "meta"),
    ]
    summary = one_line(result.summary, 2000)
    if result.status == "error":
        blocks.append(Paragraph(("Could not be checked: ", summary), "strong"))
    elif result.status == "manual":
        assigned = summary if summary.lower().startswith("assigned to") else (
            f"assigned to {one_line(result.evidence.get('assignee') or result.owner, 80)}: {summary}")
        blocks.append(Paragraph(assigned[:1].upper() + assigned[1:], "strong"))
    else:
        blocks.append(Paragraph(summary))
    blocks.extend(_evidence_blocks(result))
    if (sources := _inputs_block(result.evidence.get("inputs"))) is not None:
        blocks.append(sources)
    blocks.append(Chart(f"SLI against target: {result.title}", partial(attainment_chart, result),
                        ATTAINMENT_CHART.format(item_id=result.item_id)))
    blocks.append(Chart(f"budget spent by weekday and hour: {result.title}", partial(budget_patterns_chart, result),
                        PATTERNS_CHART.format(item_id=result.item_id)))
    return blocks


def _document(results: Iterable[ItemResult], cadence: str, period_label: str, run_url: str | None) -> Document:
    ordered = order_for_report(results)
    blocks: list[Block] = [Paragraph(_counts_text(ordered), "strong")]
    if run_url:
        url = safe_url(run_url)
        blocks.append(Paragraph((Link("Airflow run", url),) if url else ("Airflow run: ", Code(run_url))))
    if ordered:
        blocks.append(Chart("checklist items per status", partial(status_chart, ordered), STATUS_CHART))
        blocks.append(Table(("status", "item", "owner", "summary"),
                            [(f"{STATUS_EMOJI[r.status]} {r.status}", one_line(r.title, 120), one_line(r.owner, 60),
                              one_line(r.summary, 200)) for r in ordered],
                            row_tones=[STATUS_TONE[r.status] for r in ordered]))
    for result in ordered:
        blocks.extend(_item_blocks(result))
    return Document(_title(cadence, period_label), blocks)


def render_markdown(results: Iterable[ItemResult], *, cadence: str, period_label: str,
                    run_url: str | None = None) -> str:
    """The report as Markdown: title, counts per status, an overview table, then one section per item with its
    evidence, failing items first."""
    return document.render_markdown(_document(results, cadence, period_label, run_url))


def render_html(results: Iterable[ItemResult], *, cadence: str, period_label: str,
                run_url: str | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS, charts as base64 PNG), all text escaped."""
    return document.render_html(_document(results, cadence, period_label, run_url))


# ---------------------------------------------------------------------------------------------------------------
# Charts


def status_chart(results: Iterable[ItemResult]) -> bytes | None:
    """A PNG: items per status, fail at the top; None when there are no results."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    counts = Counter(r.status for r in results)
    if not counts:
        return None
    statuses = list(reversed(REPORT_ORDER))
    values = [counts.get(s, 0) for s in statuses]
    fig = Figure(figsize=(6, 2.8), dpi=100)
    ax = fig.subplots()
    bars = ax.barh(statuses, values, color=[STATUS_COLOR[s] for s in statuses])
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_width() + 0.05, bar.get_y() + bar.get_height() / 2, str(value), va="center", fontsize=9)
    ax.set_xlim(0, max(values) * 1.15 + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("items")
    ax.set_title(f"{_plural(sum(values), 'checklist item')} by status")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def _attainment_rows(evidence: Mapping[str, Any]) -> list[tuple[str, float | None, float, str]]:
    """(SLO, SLI or None, target, status) of the `slos` rows that carry an SLI and a target; [] when no SLO has
    both numbers (nothing to draw)."""
    rows = evidence.get("slos")
    if not isinstance(rows, list):
        return []
    out = []
    for row in rows:
        if not isinstance(row, Mapping) or "sli" not in row:
            continue
        target = _float(row.get("target"))
        if target is not None:
            out.append((as_text(row.get("slo")) or "?", _float(row.get("sli")), target, as_text(row.get("status"))))
    return out if any(sli is not None for _, sli, _, _ in out) else []


def attainment_chart(result: ItemResult) -> bytes | None:
    """A PNG: each SLO's SLI over the period as a bar coloured by its status, its target marked; an SLO without
    an SLI is labelled so. None when the evidence has no SLO with an SLI and a target (evidence: `slos[].slo`,
    `.sli`, `.target`, `.status`)."""
    from matplotlib.figure import Figure

    rows = _attainment_rows(result.evidence)
    if not rows:
        return None
    values = [100 * v for _, sli, target, _ in rows for v in (sli, target) if v is not None]
    low = min(values)
    span = max(100 - low, 0.05)
    bottom, top = max(low - 0.6 * span, 0.0), 100 + 0.12 * span
    fig = Figure(figsize=(max(5.0, 1.3 * len(rows) + 2), 4.2), dpi=100)
    ax = fig.subplots()
    for x, (_, sli, target, status) in enumerate(rows):
        if sli is not None:
            height = 100 * sli
            ax.bar(x, height - bottom, bottom=bottom, width=0.6, color=STATUS_COLOR.get(status, "#7f7f7f"))
            ax.text(x, height + 0.02 * span, f"{height:.3f}%", ha="center", va="bottom", fontsize=8)
        else:
            ax.text(x, bottom + 0.05 * span, "no SLI", ha="center", va="bottom", fontsize=8, color="grey",
                    rotation=90)
        # "_" labels are left out of the legend: one "target" entry for all the marks
        ax.hlines(100 * target, x - 0.4, x + 0.4, colors="black", linestyles="--", linewidth=1.8,
                  label="target" if x == 0 else "_target")
    ax.set_xticks(range(len(rows)), [chart_text(name, 40) for name, _, _, _ in rows],
                  rotation=20 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center")
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(bottom, top)
    ax.set_ylabel("SLI over the period (%)")
    ax.set_title(chart_text(f"{result.title}: SLI against target"), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


def _numbers(value: object, size: int) -> list[float] | None:
    if not isinstance(value, list) or len(value) != size:
        return None
    numbers = [_float(v) for v in value]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]


def _pattern_rows(evidence: Mapping[str, Any]) -> list[tuple[str, list[float], list[float]]]:
    """(SLO, % of the window's budget per weekday, per hour) of the `slos` rows that spent budget."""
    rows = evidence.get("slos")
    if not isinstance(rows, list):
        return []
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        budget = _float(row.get("window_budget"))
        weekdays, hours = _numbers(row.get("by_weekday"), 7), _numbers(row.get("by_hour"), 24)
        if budget is None or budget <= 0 or weekdays is None or hours is None or not any(weekdays + hours):
            continue
        out.append((as_text(row.get("slo")) or "?", [100 * v / budget for v in weekdays],
                    [100 * v / budget for v in hours]))
    return out


def budget_patterns_chart(result: ItemResult) -> bytes | None:
    """A PNG: the error budget each SLO spent per KST weekday (bars) and per KST hour of day (lines), as a share
    of the SLO window's whole budget. None when no SLO spent budget or the numbers are missing (evidence:
    `slos[].slo`, `.by_weekday` (7, Monday first), `.by_hour` (24), `.window_budget`)."""
    from matplotlib.figure import Figure

    rows = _pattern_rows(result.evidence)
    if not rows:
        return None
    fig = Figure(figsize=(11, 4.2), dpi=100)
    by_day, by_hour = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    width = 0.8 / len(rows)
    for i, (name, weekdays, hours) in enumerate(rows):
        label = chart_text(name, 40)
        by_day.bar([d - 0.4 + width * (i + 0.5) for d in range(7)], weekdays, width=width, label=label)
        by_hour.plot(range(24), hours, marker="o", markersize=3, linewidth=1.4, label=label)
    by_day.set_xticks(range(7), list(_WEEKDAYS))
    by_day.set_title("by weekday (KST)", fontsize=9)
    by_day.set_ylabel("% of the window's error budget")
    by_hour.set_xticks(range(0, 24, 3))
    by_hour.set_xlim(-0.5, 23.5)
    by_hour.set_xlabel("hour of day (KST)")
    by_hour.set_title("by hour of day (KST)", fontsize=9)
    by_hour.legend(fontsize=8, loc="upper left")
    for ax in (by_day, by_hour):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(chart_text(f"{result.title}: error budget spent"), fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def charts(results: Iterable[ItemResult]) -> dict[str, bytes]:
    """PNG charts by name (filename-safe): `status-overview`, and per item `attainment-<item id>` and
    `budget-patterns-<item id>` where its evidence has the numbers: the charts of the HTML report. A chart without
    its data is left out, never an error: odd stored evidence must not lose the report."""
    out: dict[str, bytes] = {}
    for block in _document(results, "", "", None).blocks:
        if not isinstance(block, Chart):
            continue
        try:
            png = block.draw()
        except (ValueError, TypeError, KeyError, OverflowError):
            png = None
        if png:
            out[block.name] = png
    return out


# ---------------------------------------------------------------------------------------------------------------
# Slack


def _slack_line(result: ItemResult) -> tuple[Span, ...]:
    emoji = f"{SLACK_EMOJI[result.status]} "
    title = Strong(one_line(result.title, 120))
    owner = one_line(result.owner, 40)
    summary = one_line(result.summary, 300)
    if result.status == "error":
        return emoji, title, f" ({owner}) · could not be checked: {summary}"
    if result.status == "manual":
        return emoji, title, f" · assigned to {one_line(result.evidence.get('assignee') or result.owner, 40)}"
    if result.status == "pass":
        return (emoji + title.text,)
    return emoji, title, f" ({owner}) · {summary}"


def slack_summary(results: Iterable[ItemResult], *, cadence: str, period_label: str,
                  report_url: str | None = None) -> str:
    """Slack mrkdwn: the title with counts per status, then one line per item, failing items first (fail, error
    with its reason, warn with its summary, manual with the assignee, pass); at most SLACK_MAX_CHARS characters,
    the items that did not fit counted as "+N more"."""
    ordered = order_for_report(results)
    head: list[Span] = [Strong(one_line(_title(cadence, period_label), 200)), f" · {_counts_text(ordered)}"]
    if report_url:
        url = safe_url(report_url)
        head += [" · ", Link("full report", url)] if url else [f" · full report: {one_line(report_url, 300)}"]
    lines = [Paragraph(tuple(head)), *(Paragraph(_slack_line(r)) for r in ordered)]
    return document.render_slack(Document("", lines), max_chars=SLACK_MAX_CHARS)


__all__ = ["ATTAINMENT_CHART", "MAX_TABLE_ROWS", "PATTERNS_CHART", "SLACK_MAX_CHARS", "STATUS_CHART",
           "attainment_chart", "budget_patterns_chart", "charts", "render_html", "render_markdown",
           "slack_summary", "status_chart"]
