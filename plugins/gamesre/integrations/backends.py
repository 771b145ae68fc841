"""The product's backends: importing this module registers every kind they implement in their domain's registry.

One import per backend module; each module registers its kind with a factory when it is imported
(gamesre.core.registry). The demo's own pieces are not listed: they come from the modules named in
GAMESRE_EXTENSIONS.
"""
# ruff: noqa: F401  (imported for their registrations)
from __future__ import annotations

import gamesre.integrations.chaos.kubernetes  # chaos: kubernetes
import gamesre.integrations.chaos.local  # chaos: local
