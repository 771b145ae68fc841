"""The smoke-traffic command line (demo/services.py: smoke_command) as the load generator reads it, and the web
configuration (TLS, basic auth) the tests give Prometheus and Alertmanager, as promtool reads it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from demo.curve import load_factor_at_hour
from demo.loadgen import parse_args
from demo.procs import StackError
from demo.services import FIXED_RATE_HOUR, WebConfig, smoke_command, web_options


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


def test_a_web_config_with_tls_client_certificates_and_basic_auth_passes_promtool(tmp_path: Path) -> None:
    from tests.pki import PrivateCA, bcrypt_hash

    ca = PrivateCA(tmp_path / "pki", "web")
    server = ca.issue("server", server=True)
    web = WebConfig(server.cert, server.key, client_ca_file=ca.cert_file,
                    basic_auth_users={"gamesre": bcrypt_hash("not-a-secret")})

    options = web_options(tmp_path, web)

    assert options == [f"--web.config.file={tmp_path / 'web.yml'}"]
    doc = yaml.safe_load((tmp_path / "web.yml").read_text())
    assert doc["tls_server_config"] == {"cert_file": str(server.cert), "key_file": str(server.key),
                                        "client_auth_type": "RequireAndVerifyClientCert",
                                        "client_ca_file": str(ca.cert_file)}
    assert doc["basic_auth_users"]["gamesre"].startswith("$2b$04$")
    assert web.scheme == "https" and WebConfig(basic_auth_users=doc["basic_auth_users"]).scheme == "http"
    assert web_options(tmp_path, None) == []


def test_a_web_config_promtool_refuses_stops_the_start_with_one_line(tmp_path: Path) -> None:
    web = WebConfig(tmp_path / "missing.pem", tmp_path / "missing-key.pem")

    with pytest.raises(StackError, match=r"the web configuration .*web\.yml is invalid"):
        web_options(tmp_path, web)
