"""Fault-injection backends for chaos game-days: `local` (the demo fleet) and `kubernetes` (Litmus, Chaos Mesh)."""
