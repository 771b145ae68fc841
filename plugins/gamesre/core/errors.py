"""The error every outside system's client raises (Prometheus, Alertmanager, the store, HAProxy, Kubernetes, the
deploy and chaos backends): use cases catch this one type where a failed read must block (fail safe) or be
reported, without knowing which client it came from."""
from __future__ import annotations


class OutsideSystemError(RuntimeError):
    """An outside system could not be asked, or refused; the message names the system and the cause."""
