"""The product's backend kinds: importing this module registers every one with its domain's registry.

Deploy traffic (gamesre.deploy.backend.DEPLOY_BACKENDS): local, kubernetes, argo-rollouts. Event scaling
(gamesre.calendar.scaling.EVENT_SCALERS): kubernetes. The demo's own pieces (event scaling and smoke traffic of
kind local) come from the module GAMESRE_EXTENSIONS names (demo.backends).
"""
from __future__ import annotations

import gamesre.integrations.deploy.argo_rollouts
import gamesre.integrations.deploy.kubernetes
import gamesre.integrations.deploy.local
import gamesre.integrations.kubernetes  # noqa: F401
