"""The evidence of one game-service deploy for people: why it ended as it did, gate by gate and step by step.

Pure: the deployment record and its step verdicts come in as the SRE store keeps them (`deployment` and
`deploy_verdict` rows, with the analysis trigger's event as a verdict's evidence); out comes a Document, or its
Markdown. Per stage: the gates (passed, BLOCKED, or bypassed by force), then per analysis step its verdict and
reason, each SLI's counts and statistics with the PromQL that produced them, and the SLIs that were not judged.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gamesre.reports import document
from gamesre.reports.document import (
    Block,
    BulletList,
    Code,
    Document,
    Facts,
    Heading,
    Link,
    Paragraph,
    Table,
    Text,
    Tone,
    safe_url,
)
from gamesre.reports.text import as_text, one_line

STAGE_TONE: dict[str, Tone] = {"promoted": "pass", "rolled_back": "fail", "running": "warn"}
# fail rolls back; timed_out rolls back too, but for want of evidence rather than for a regression
DECISION_TONE: dict[str, Tone] = {"pass": "pass", "fail": "fail", "error": "fail", "timed_out": "warn",
                                  "inconclusive": "warn"}
GATE_TONE: dict[str, Tone] = {"passed": "pass", "BLOCKED": "fail", "bypassed": "warn"}


def _gate_mark(gate: Mapping[str, Any]) -> str:
    return "bypassed" if gate.get("bypassed") else "passed" if gate.get("passed") else "BLOCKED"


def _number(value: object, fmt: str) -> str:
    """A statistic as `fmt` says; "-" where the analysis had none (no data gives no statistic)."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return format(value, fmt) if number else "-"


def _counts(cohort: object) -> str:
    """A cohort's event counts as people read them: "3 bad of 1,000 (0.3000%)"."""
    if not isinstance(cohort, Mapping) or cohort.get("total") is None:
        return "no data"
    return (f"{_number(cohort.get('bad'), ',.0f')} bad of {_number(cohort.get('total'), ',.0f')} "
            f"({_number(cohort.get('ratio'), '.4%')})")


def _header_facts(record: Mapping[str, Any]) -> Facts:
    run = as_text(record.get("run_url"))
    url = safe_url(run)
    facts: list[tuple[str, Text]] = [
        ("reason", one_line(record.get("reason"), 2000) or "-"),
        ("run", (Link(url, url),) if url else run or "-"),
        ("strategy", as_text(record.get("strategy")) or "-"),
        ("backend", as_text(record.get("backend")) or "-"),
        ("stages", ", ".join(as_text(s) for s in record.get("stages") or []) or "-"),
        ("requested by", as_text(record.get("requested_by")) or "-"),
        ("change ticket", as_text(record.get("change_ticket")) or "-"),
    ]
    if record.get("forced"):
        facts.append(("forced", one_line(record.get("force_reason")) or "no reason recorded"))
    return Facts(facts)


def _gates_table(gates: Sequence[Mapping[str, Any]]) -> Table:
    marks = [_gate_mark(g) for g in gates]
    rows = [(as_text(g.get("gate")), mark, one_line(g.get("reason"))) for g, mark in zip(gates, marks, strict=True)]
    return Table(("gate", "result", "reason"), rows, title="Gates", row_tones=[GATE_TONE[mark] for mark in marks])


def _step_blocks(verdict: Mapping[str, Any]) -> list[Block]:
    decision = as_text(verdict.get("decision"))
    blocks: list[Block] = [Heading(3, f"{as_text(verdict.get('step_label'))}: {decision}",
                                   DECISION_TONE.get(decision, "")),
                           Paragraph(one_line(verdict.get("reason"), 4000) or "no reason recorded")]
    evidence = verdict.get("evidence") or {}
    slis = [s for s in evidence.get("slis") or [] if isinstance(s, Mapping)]
    if slis:
        rows = []
        for sli in slis:
            stat = sli.get("statistic") or {}
            rows.append((as_text(sli.get("slo")), as_text(sli.get("decision")), as_text(sli.get("rule")),
                         _counts(sli.get("candidate")), _counts(sli.get("baseline")), _number(stat.get("llr"), ".2f"),
                         _number(stat.get("p0"), ".4%"), _number(stat.get("p1"), ".4%")))
        blocks.append(Table(("SLI", "decision", "rule", "candidate", "baseline", "LLR", "p0", "p1"), rows,
                            title="SLIs", row_tones=[DECISION_TONE.get(as_text(s.get("decision")), "") for s in slis]))
        queries: list[Text] = []
        for sli in slis:
            for cohort, named in (sli.get("queries") or {}).items():  # {"candidate": {"total": PromQL, ...}, ...}
                queries += [(f"{as_text(sli.get('slo'))} {cohort} {name}: ", Code(as_text(promql)))
                            for name, promql in (named.items() if isinstance(named, Mapping) else ())]
        if queries:
            blocks.append(BulletList("Queries", queries))
    skipped = [s for s in evidence.get("not_judged") or [] if isinstance(s, Mapping)]
    if skipped:
        blocks.append(BulletList("Not judged", [f"{as_text(s.get('slo'))}: {one_line(s.get('reason'))}"
                                                for s in skipped]))
    return blocks


def evidence_document(record: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]]) -> Document:
    """The deploy's evidence: the request and outcome, then per stage its gates and every step's verdict."""
    blocks: list[Block] = [_header_facts(record)]
    for entry in record.get("stage_log") or []:
        outcome = as_text(entry.get("outcome")) or "not started"
        blocks.append(Heading(2, f"Stage {as_text(entry.get('stage'))}: {outcome}", STAGE_TONE.get(outcome, "")))
        gates = [g for g in entry.get("gates") or [] if isinstance(g, Mapping)]
        if gates:
            blocks.append(_gates_table(gates))
        for verdict in verdicts:
            if verdict.get("stage") == entry.get("stage"):
                blocks.extend(_step_blocks(verdict))
    title = (f"Deploy {as_text(record.get('service')) or '?'} {as_text(record.get('version')) or '?'}: "
             f"{as_text(record.get('outcome')) or '?'}")
    return Document(title, blocks)


def evidence_markdown(record: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]]) -> str:
    """The deploy's evidence as Markdown (the file posted to the service's Slack channel)."""
    return document.render_markdown(evidence_document(record, verdicts))
