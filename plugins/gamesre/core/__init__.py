"""Shared building blocks: config reading and errors, paths, durations, time (KST), gate results, the services
catalog and the metric contract."""
