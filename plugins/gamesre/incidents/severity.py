"""An incident's severity from its page alerts and the facts gathered about it, by the rules of incidents.yaml.

The first rule whose conditions all hold decides, else the default; then the budget rule can raise the severity
(an incident that consumed 20% of an SLO's budget is at least Sev1, include/runbooks/incident-response.md) but
never lower it. sev0 is the highest. People change the severity as they learn more: `change_severity`.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gamesre.incidents.payload import Alert
    from gamesre.incidents.spec import IncidentsSpec, SeverityRule

SEVERITIES = ("sev0", "sev1", "sev2", "sev3")  # highest first


def _rank(severity: str) -> int:
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r} ({', '.join(SEVERITIES)})")
    return SEVERITIES.index(severity)


def higher(a: str, b: str) -> str:
    """The more severe of two severities (sev0 is the highest); ValueError for an unknown one."""
    return a if _rank(a) <= _rank(b) else b


@dataclass(frozen=True)
class SeverityFacts:
    """What is known about the incident's impact when it is classified."""

    burn_rates: Mapping[str, float] = field(default_factory=dict)  # slo -> burn rate over the last 1h
    budget_consumed: Mapping[str, float] = field(default_factory=dict)  # slo -> share of the window's budget spent
    players_affected: float | None = None  # share of players affected, 0..1; None when not known


@dataclass(frozen=True)
class SeverityDecision:
    severity: str
    rule: int | None  # the index of the matching rule in severity.rules; None for the default
    why: tuple[str, ...]  # sentences for the timeline: the rule's why, then the budget rule's when it applies


def rule_matches(rule: SeverityRule, page_alerts: Sequence[Alert], services: Collection[str],
                 slos: Collection[str], facts: SeverityFacts) -> bool:
    """Whether every condition the rule gives holds; an unknown fact (no burn rate, players unknown) never holds."""
    if rule.alertname is not None and not any(a.alertname in rule.alertname for a in page_alerts):
        return False
    if rule.labels is not None and not any(
            all(a.labels.get(name) == value for name, value in rule.labels.items()) for a in page_alerts):
        return False
    if rule.services is not None and not set(rule.services) & set(services):
        return False
    if rule.slos is not None and not set(rule.slos) & set(slos):
        return False
    if rule.burn_rate_at_least is not None:
        rates = [facts.burn_rates[slo] for slo in slos if slo in facts.burn_rates]
        if not rates or max(rates) < rule.burn_rate_at_least:
            return False
    if rule.players_affected_at_least is not None and (
            facts.players_affected is None or facts.players_affected < rule.players_affected_at_least):
        return False
    return True


def classify(page_alerts: Sequence[Alert], services: Collection[str], slos: Collection[str], facts: SeverityFacts,
             spec: IncidentsSpec) -> SeverityDecision:
    """The incident's severity: the first matching rule, else the default, raised by the budget rule if it holds.

    `services` and `slos` are the incident's (those of its page alerts, usually); burn rates and budget
    consumption count for the incident's SLOs only.
    """
    rules = spec.severity.rules
    matched = next((i for i, rule in enumerate(rules) if rule_matches(rule, page_alerts, services, slos, facts)), None)
    severity: str
    if matched is None:
        severity = spec.severity.default
        why = [f"no severity rule matched: the default, {severity}"]
    else:
        severity = rules[matched].severity
        why = [f"severity.rules[{matched}] ({severity}): {rules[matched].why}"]
    budget = spec.severity.budget_rule
    spent = sorted((share, slo) for slo, share in facts.budget_consumed.items()
                   if slo in slos and share >= budget.consumed_at_least)
    if spent:
        share, slo = spent[-1]
        raised = higher(severity, budget.at_least)
        consequence = f"raised from {severity} to {raised}" if raised != severity else f"stays {severity}"
        why.append(f"the incident consumed {share:.0%} of the {slo} SLO's error budget (at least "
                   f"{budget.consumed_at_least:.0%} makes it at least {budget.at_least}): {consequence}")
        severity = raised
    return SeverityDecision(severity, matched, tuple(why))


def change_severity(current: str, new: str, reason: str, by: str) -> dict[str, Any]:
    """A person's change of an incident's severity as the record the timeline keeps; ValueError for an unknown
    severity, no change, or a missing reason or author."""
    _rank(current)
    _rank(new)
    if new == current:
        raise ValueError(f"the incident is already {current}")
    if not reason.strip():
        raise ValueError("a severity change needs a reason (people read it in the timeline)")
    if not by.strip():
        raise ValueError("a severity change needs the person who made it")
    return {"from": current, "to": new, "direction": "upgrade" if higher(new, current) == new else "downgrade",
            "reason": reason.strip(), "by": by.strip()}
