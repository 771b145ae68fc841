"""WindowTransitionOperator: waits, deferred, until a maintenance or event transition's exact time, then applies it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class WindowTransitionOperator(BaseOperator):
    """Apply one planned transition (window start or end, event scale-up or back) at its exact time.

    :param transition: the plan's transition: {"at": ISO time, "kind": ..., "window_id": ...}. While its time
        is in the future the task is deferred on a DateTimeTrigger, holding no worker slot.
    """

    template_fields = ("transition",)

    def __init__(self, *, transition: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transition = transition

    def execute(self, context: Context) -> Any:
        at = datetime.fromisoformat(self.transition["at"])
        if datetime.now(UTC) < at:
            self.defer(trigger=DateTimeTrigger(moment=at), method_name="execute_complete",
                       timeout=at - datetime.now(UTC) + timedelta(minutes=30))
        return self._apply()

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        return self._apply()

    def _apply(self) -> Any:
        from gamesre.airflow.maintenance import apply_transition

        return apply_transition(self.transition)
