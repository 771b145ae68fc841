"""The smoke-traffic command line (demo/services.py: smoke_command) as the load generator reads it."""
from __future__ import annotations

import sys

import pytest

from demo.curve import load_factor_at_hour
from demo.loadgen import parse_args
from demo.services import FIXED_RATE_HOUR, smoke_command


def test_smoke_command_sends_one_service_at_a_fixed_rate_for_a_while() -> None:
    cmd = smoke_command("http://127.0.0.1:18103", "game-server", 90, 5)
    assert cmd[0] == sys.executable and cmd[1].endswith("demo/loadgen.py")
    args = parse_args(cmd[2:])
    assert (args.base_url, args.service, args.duration) == ("http://127.0.0.1:18103", "game-server", 90)
    assert args.fixed_hour == FIXED_RATE_HOUR
    assert args.peak_rps * load_factor_at_hour(args.fixed_hour) == 5  # the rate asked for, exactly


@pytest.mark.parametrize(("base_url", "service", "seconds", "rps", "match"), [
    ("http://127.0.0.1:1", "chat-server", 10, 1, "chat-server"),
    ("127.0.0.1:1", "matchmaking", 10, 1, "http://"),
    ("http://127.0.0.1:1", "matchmaking", 0, 1, "positive"),
    ("http://127.0.0.1:1", "matchmaking", 10, -1, "positive"),
])
def test_smoke_command_refuses_what_the_load_generator_would(base_url: str, service: str, seconds: float,
                                                              rps: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        smoke_command(base_url, service, seconds, rps)
