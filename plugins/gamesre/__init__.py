"""gamesre: SLOs, error budgets, maintenance windows, chaos game-days and guarded deploys for the game service."""
