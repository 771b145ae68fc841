"""The incident intake: Alertmanager's webhook receiver, served by the Airflow API server (a plugin's FastAPI app,
registered in plugins/gamesre_plugin.py at /gamesre).

POST /gamesre/incidents/alertmanager with `Authorization: Bearer <token>`; the token is the content of the file
named by GAMESRE_INCIDENT_INTAKE_TOKEN_FILE (Alertmanager reads the same file through
`http_config.authorization.credentials_file`). Plugin endpoints are not behind Airflow's login, so this check is
the only door: no token configured refuses everything (fail closed).

Each notification is recorded and opens or joins an incident in one transaction (gamesre.app.incidents), then the
incident's `incident_response` run is made sure to exist (run id = the incident id), on every notification of
the incident: a run that could not be created the first time is created by the retry or the next repeat.

Answers: 200 with what the notification did; 401/403 a missing or wrong token; 413 a body over 4 MiB; 400 not JSON
and 422 not an Alertmanager notification (both name the problem; nothing recorded); 503 when the store, the
configuration or Airflow could not take it (Alertmanager retries 5xx; a retried body is recognised).
"""
from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from gamesre.incidents.payload import MAX_BODY_BYTES

if TYPE_CHECKING:
    from gamesre.app.incidents import IncidentConfig

log = logging.getLogger(__name__)

# The plugin manager imports this module in every Airflow process (tasks too): the use case, the store and their
# dependencies (SQLAlchemy, numpy, pydantic models) are imported on the first notification, not here.
TOKEN_FILE_ENV = "GAMESRE_INCIDENT_INTAKE_TOKEN_FILE"  # noqa: S105 (the name of a variable naming a file)
INCIDENT_DAG = "incident_response"
INTAKE_PATH = "/incidents/alertmanager"

Trigger = Callable[[str], str]  # incident id -> what happened to its run ("created" | "exists")


def read_token(path: str | None) -> str | None:
    """The expected bearer token, or None when none is configured (the file's content, whitespace stripped)."""
    if not path:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        log.error("incident intake: cannot read the token file %s (%s): refusing every notification", path,
                  exc.strerror or exc)
        return None
    return token or None


def create_app(*, store: Callable[[], Any], config: Callable[[], IncidentConfig], token: Callable[[], str | None],
               trigger: Trigger, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    """The receiver; its dependencies are passed in (the store, include/config, the token, the run trigger)."""
    app = FastAPI(title="gamesre incident intake", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(INTAKE_PATH)
    def alertmanager_webhook(request: Request, raw: bytes = Depends(_read_body)) -> JSONResponse:
        from gamesre.app.incidents import PayloadError, receive_notification
        from gamesre.core.config import SpecError
        from gamesre.integrations.store.errors import StoreError

        refused = _check_token(request.headers.get("authorization"), token())
        if refused is not None:
            return refused
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"the body is over {MAX_BODY_BYTES} bytes, more than an Alertmanager "
                                          "notification needs"}, 413)
        try:
            result = receive_notification(raw, store(), config(), clock())
        except PayloadError as exc:  # "body: ..." is not a JSON object at all; the rest names fields
            status = 400 if all(p.startswith("body: ") for p in exc.problems) else 422
            return JSONResponse({"error": "not an Alertmanager notification", "problems": exc.problems}, status)
        except (StoreError, SpecError, OSError) as exc:
            log.exception("incident intake: the notification was not recorded")
            return JSONResponse({"error": f"not recorded, retry: {exc}"}, 503)
        answer: dict[str, Any] = result.to_dict()
        if result.incident_id:
            try:
                answer["run"] = trigger(result.incident_id)
            except Exception as exc:  # Airflow's database or the DAG: the incident is recorded, the run is not yet
                log.exception("incident intake: %s recorded, its %s run not created", result.incident_id,
                              INCIDENT_DAG)
                return JSONResponse({**answer, "error": f"the {INCIDENT_DAG} run of {result.incident_id} could not "
                                                       f"be created, retry: {exc}"}, 503)
        log.info("incident intake: %s %s (%s)", result.action, result.incident_id or "-", result.why)
        return JSONResponse(answer, 200)

    return app


async def _read_body(request: Request) -> bytes:
    """The request body, read up to MAX_BODY_BYTES + 1 (a larger one is refused without reading it all)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def _check_token(header: str | None, expected: str | None) -> JSONResponse | None:
    if expected is None:
        return JSONResponse({"error": f"the incident intake has no token configured ({TOKEN_FILE_ENV}): every "
                                      "notification is refused"}, 503)
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return JSONResponse({"error": "an Authorization: Bearer <token> header is required"}, 401,
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return JSONResponse({"error": "the bearer token is wrong"}, 403)
    return None


# --- the API server's wiring -------------------------------------------------------------------------------------

_lock = threading.Lock()
_made: dict[str, Any] = {}


def _once(name: str, make: Callable[[], Any]) -> Any:
    with _lock:
        if name not in _made:
            _made[name] = make()
        return _made[name]


def _store() -> Any:
    from gamesre.airflow.hooks.store import SREStoreHook

    return _once("store", lambda: SREStoreHook().get_conn())


def _config() -> IncidentConfig:
    from gamesre.app.incidents import IncidentConfig

    return _once("config", IncidentConfig)  # type: ignore[no-any-return]


def trigger_incident_run(incident_id: str) -> str:
    """Make sure the incident's incident_response run exists (run id = the incident id)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        trigger_dag(INCIDENT_DAG, run_id=incident_id, conf={"incident_id": incident_id},
                    triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name="alertmanager")
    except DagRunAlreadyExists:
        return "exists"
    return "created"


def airflow_app() -> FastAPI:
    """The receiver as the API server serves it."""
    return create_app(store=_store, config=_config, token=lambda: read_token(os.environ.get(TOKEN_FILE_ENV)),
                      trigger=trigger_incident_run)
