"""Chaos game-days, the pure part: the experiment catalog, the fault interface and its backends' registry, the
safety gates, probes, abort rules, verdicts and the game-day rules."""
