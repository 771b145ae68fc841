"""Admin API validation of the fleet: unknown fields, wrong types and out-of-range values are refused whole."""
from __future__ import annotations

import math

import pytest

from demo.admin import (
    FAULT_RULES,
    AdminValidationError,
    Build,
    Faults,
    active_fault_labels,
    parse_build_update,
    parse_fault_update,
)
from gamesre.core.contract import load_contract


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"bogus": 1}, "bogus: unknown field"),
        ({"error_rate": 1.5}, "error_rate: 1.5 is outside 0..1"),
        ({"error_rate": -0.1}, "error_rate: -0.1 is outside 0..1"),
        ({"error_rate": "0.5"}, "error_rate: expected a number, got str"),
        ({"error_rate": True}, "error_rate: expected a number, got bool"),
        ({"error_rate": None}, "error_rate: expected a number, got NoneType"),
        ({"error_rate": math.nan}, "error_rate: must be a finite number"),
        ({"latency_ms": 60001}, "latency_ms: 60001 is outside 0..60000"),
        ({"db_latency_ms": -1}, "db_latency_ms: -1 is outside 0..60000"),
        ({"not_ready": 1}, "not_ready: expected true or false, got int"),
        ({"crash": "yes"}, "crash: expected true or false, got str"),
        ({"memory_mb": 1025}, "memory_mb: 1025 is outside 0..1024"),
        ({"memory_mb": 1.5}, "memory_mb: expected a whole number of MB, got 1.5"),
        ({"disk_fill_mb": 513}, "disk_fill_mb: 513 is outside 0..512"),
        ({"cpu_load": 2}, "cpu_load: 2 is outside 0..1"),
        ([1, 2], "body: expected a JSON object, got list"),
    ],
)
def test_bad_fields_are_rejected_with_the_field_and_reason(body: object, error: str) -> None:
    with pytest.raises(AdminValidationError) as info:
        parse_fault_update(Faults(), body)
    assert str(info.value).startswith(error)


def test_one_bad_field_rejects_the_whole_update() -> None:
    current = Faults(error_rate=0.1)
    with pytest.raises(AdminValidationError, match="latency_ms"):
        parse_fault_update(current, {"error_rate": 0.9, "not_ready": True, "latency_ms": 99999})
    assert current == Faults(error_rate=0.1)  # frozen: nothing could have been applied


def test_partial_update_keeps_the_other_faults() -> None:
    updated = parse_fault_update(Faults(error_rate=0.1, memory_mb=64), {"latency_ms": 250, "memory_mb": 0})
    assert updated == Faults(error_rate=0.1, latency_ms=250.0, memory_mb=0)
    assert parse_fault_update(updated, {}) == updated


def test_limits_are_inclusive() -> None:
    top = {name: (True if rule.kind == "boolean" else rule.high) for name, rule in FAULT_RULES.items()}
    faults = parse_fault_update(Faults(), top)
    assert faults.memory_mb == 1024 and faults.disk_fill_mb == 512 and faults.latency_ms == 60000


def test_active_faults_use_only_contract_fault_values() -> None:
    contract_faults = set(load_contract().label_values["fault"])
    everything = Faults(error_rate=0.5, latency_ms=10, not_ready=True, crash=True, db_fail_rate=0.1,
                        db_latency_ms=5, cpu_load=0.2, memory_mb=1, disk_fill_mb=1)
    assert active_fault_labels(everything) == contract_faults
    assert active_fault_labels(Faults()) == set()
    assert active_fault_labels(Faults(crash=True)) == {"not_ready", "error_rate"}
    assert active_fault_labels(Faults(db_latency_ms=100)) == {"db_slow"}


def test_build_update_validation() -> None:
    tracks = ("stable", "canary")
    build = Build("1.4.2", "stable")
    assert parse_build_update(build, {"version": "1.5.0-rc.1", "track": "canary"}, tracks) == Build("1.5.0-rc.1",
                                                                                                    "canary")
    assert parse_build_update(build, {"track": "canary"}, tracks) == Build("1.4.2", "canary")
    for body, field in (({"track": "beta"}, "track"), ({"version": ""}, "version"), ({"version": 3}, "version"),
                        ({"version": "1.0", "owner": "me"}, "owner"), ({"version": "a b"}, "version")):
        with pytest.raises(AdminValidationError) as info:
            parse_build_update(build, body, tracks)
        assert info.value.field == field
