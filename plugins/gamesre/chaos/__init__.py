"""Chaos game-days, the pure part: the experiment catalog, the safety gates, probes, abort rules and verdicts."""
