"""The demo's `local` backend pieces, registered with the product by kind (GAMESRE_EXTENSIONS=demo.backends).

The product owns the interfaces (gamesre.calendar.scaling.EventScaler, gamesre.deploy.backend's smoke traffic)
and never imports the demo; the demo's Airflow environment names this module, and the product imports it the
first time it looks up a kind nobody else registered:
- event scaling `local`: extra demo fleet processes behind HAProxy for a live-ops event (demo/fleet_scaling.py);
- synthetic traffic `local`: the load generator's smoke traffic at a deploy's preview (demo/services.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from demo.fleet_scaling import LocalFleetScaler
from demo.services import smoke_command
from gamesre.calendar.occurrence import ServiceScaling
from gamesre.calendar.scaling import EVENT_SCALERS, EventScaler, ScaleChange
from gamesre.deploy.backend import SMOKE_TRAFFIC


class LocalEventScaler(EventScaler):
    """Event scaling of the demo fleet described by GAMESRE_DEMO_FLEET (its state file beside the fleet's)."""

    def __init__(self, haproxy: Any):
        fleet_file = os.environ.get("GAMESRE_DEMO_FLEET")
        if not fleet_file:
            raise RuntimeError("local event scaling needs the demo fleet: GAMESRE_DEMO_FLEET (set by `make demo`) "
                               "must name its fleet.json")
        self.scaler = LocalFleetScaler(Path(fleet_file).parent / "event-scaling.json", haproxy)

    def scale_up(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        result = self.scaler.scale_up(event_id, scaling.service, scaling.extra_instances,
                                      prefix=scaling.instance_prefix)
        return ScaleChange(bool(result.started or result.added or result.removed), result.message)

    def scale_back(self, event_id: str, scaling: ServiceScaling) -> ScaleChange:
        result = self.scaler.scale_back(event_id, scaling.service)
        return ScaleChange(bool(result.removed or result.stopped), result.message)


EVENT_SCALERS.register("local", lambda services, connections: LocalEventScaler(connections.haproxy()))
SMOKE_TRAFFIC.register("local", lambda: smoke_command)
