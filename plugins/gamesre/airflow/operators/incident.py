"""IncidentWatchOperator: escalates an incident on time, deferred between steps, until people resolve it."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from gamesre.airflow.triggers.incident import IncidentWatchTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class IncidentWatchOperator(BaseOperator):
    """Take the escalation steps that are due (gamesre.app.incidents.watch), then defer on an
    IncidentWatchTrigger until the next step is due or people change the incident; done when it is resolved.

    :param incident_id: the incident (templated).
    :param poll_s: how often the trigger reads the incident while deferred.
    """

    template_fields = ("incident_id",)

    def __init__(self, *, incident_id: str, poll_s: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.poll_s = poll_s

    def execute(self, context: Context) -> Any:
        return self._step()

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if event and event.get("why") == "error":
            raise RuntimeError(f"watching {self.incident_id}: {event.get('error')}")
        return self._step()

    def _step(self) -> Any:
        from gamesre.airflow.incidents import watch

        state = watch(self.incident_id)
        for step in state["escalated"]:
            self.log.info("%s escalated to the %s (%s)", self.incident_id, step["level"], step["person"])
        if state["resolved"]:
            return state
        self.defer(trigger=IncidentWatchTrigger(self.incident_id, state["seen"], state["next_at"], self.poll_s),
                   method_name="execute_complete", timeout=timedelta(days=14))
        return None  # not reached: defer raises
