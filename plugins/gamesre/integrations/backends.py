"""The product's backend kinds: importing this module registers every one with its domain's registry.

One import per backend module; each registers its kind with a factory when imported (gamesre.core.registry):
deploy traffic (gamesre.deploy.backend.DEPLOY_BACKENDS): local, kubernetes, argo-rollouts; faults
(gamesre.chaos.faults.FAULT_BACKENDS): local, kubernetes; event scaling (gamesre.calendar.scaling.EVENT_SCALERS):
kubernetes. The demo's own pieces (event scaling and smoke traffic of kind local) come from the modules named
in GAMESRE_EXTENSIONS (demo.backends).
"""
# ruff: noqa: F401  (imported for their registrations)
from __future__ import annotations

import gamesre.integrations.chaos.kubernetes
import gamesre.integrations.chaos.local
import gamesre.integrations.deploy.argo_rollouts
import gamesre.integrations.deploy.kubernetes
import gamesre.integrations.deploy.local
import gamesre.integrations.kubernetes
