"""Parse the repository's DAG folder the way the dag-processor does, with the network blocked.

Run in a subprocess by tests/unit/test_dag_integrity.py; prints one JSON document. Any socket connection,
Variable lookup or connection lookup during parsing raises, so a DAG that does I/O at import shows up as an
import error.
"""
from __future__ import annotations

import json
import socket
import sys
import time


class ParseTimeIO(RuntimeError):
    pass


def _blocked(*_args: object, **_kwargs: object) -> None:
    raise ParseTimeIO("network access while parsing a DAG file")


def main(dags_folder: str) -> None:
    socket.socket.connect = _blocked  # type: ignore[method-assign]
    socket.socket.connect_ex = _blocked  # type: ignore[method-assign]
    socket.create_connection = _blocked  # type: ignore[assignment]

    from airflow.sdk import BaseHook, Variable

    def _no_lookup(*_a: object, **_k: object) -> None:
        raise ParseTimeIO("Variable or Connection lookup while parsing a DAG file")

    Variable.get = _no_lookup  # type: ignore[method-assign]
    BaseHook.get_connection = _no_lookup  # type: ignore[method-assign]

    from airflow.dag_processing.dagbag import DagBag

    from gamesre.airflow.failure_notifier import TaskFailureNotifier

    def notified(task: object) -> bool:
        callbacks = getattr(task, "on_failure_callback", None) or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        return any(isinstance(c, TaskFailureNotifier) for c in callbacks)

    started = time.perf_counter()
    bag = DagBag(dag_folder=dags_folder)
    elapsed = time.perf_counter() - started
    out = {
        "elapsed": elapsed,
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "file_durations": {str(s.file): s.duration.total_seconds() if hasattr(s.duration, "total_seconds")
                           else float(s.duration) for s in bag.dagbag_stats},
        "dags": {
            dag_id: {
                "owners": sorted({t.owner for t in dag.tasks}),
                "tags": sorted(dag.tags or []),
                "retries": sorted({t.retries for t in dag.tasks}),
                "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
                "fileloc": dag.fileloc,
                "n_tasks": len(dag.tasks),
                "tasks_without_failure_notifier": sorted(t.task_id for t in dag.tasks if not notified(t)),
            }
            for dag_id, dag in bag.dags.items()
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
