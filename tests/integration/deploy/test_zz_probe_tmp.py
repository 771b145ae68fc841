from __future__ import annotations
import time
import requests
from gamesre.integrations.haproxy import HAProxyRuntime

def test_probe(live_stack) -> None:
    h = HAProxyRuntime("127.0.0.1", live_stack.haproxy_admin_port)
    odd = []
    for rnd in range(40):
        h.set_weight("game-server", "gs-canary-1", 256)
        h.set_weight("game-server", "gs-stable-1", 0)
        h.set_weight("game-server", "gs-stable-2", 0)
        time.sleep(0.05)
        h.set_weight("game-server", "gs-stable-1", 100)
        h.set_weight("game-server", "gs-stable-2", 100)
        h.set_weight("game-server", "gs-canary-1", 0)
        t0 = time.monotonic()
        for i in range(20):
            r = requests.post(f"{live_stack.players_url}/api/action/move", timeout=10)
            inst = r.headers.get("X-Instance", "none")
            if inst not in ("gs-stable-1", "gs-stable-2"):
                odd.append((rnd, i, round(time.monotonic() - t0, 4), inst, r.status_code, r.text[:80]))
    print("ODD", odd)
