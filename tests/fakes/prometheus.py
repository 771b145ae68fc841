"""Prometheus instant queries answered from a table, for use-case tests: by the first key the query contains, a
value, None (no data) or an error to raise; the queries asked are kept."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gamesre.integrations.prometheus import PrometheusUnreachable

Answer = float | None | Exception


@dataclass
class TablePrometheus:
    answers: Mapping[str, Answer] = field(default_factory=dict)  # a part of the query -> its answer
    default: Answer = None
    asked: list[tuple[str, float]] = field(default_factory=list)

    def scalar(self, expr: str, at: float) -> float | None:
        self.asked.append((expr, at))
        answer = next((a for part, a in self.answers.items() if part in expr), self.default)
        if isinstance(answer, Exception):
            raise answer
        return answer


def unreachable_prometheus() -> TablePrometheus:
    """Every query fails as when Prometheus does not answer."""
    return TablePrometheus(default=PrometheusUnreachable("Prometheus: connection refused (http://127.0.0.1:9)"))
