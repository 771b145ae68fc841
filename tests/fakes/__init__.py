"""Fakes for tests only: outside systems that cannot run on these machines (the Kubernetes API server), and
in-memory stand-ins for the ports of pure use cases (tests/fakes/counter_history.py)."""
