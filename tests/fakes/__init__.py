"""Fakes of outside systems that cannot run on these machines (the Kubernetes API server), for tests only."""
