"""Version pins: requirements.txt, PEP 440 specifiers, Debian versions, and the monthly stack item."""
from __future__ import annotations

import pytest

from gamesre.checklists.runner import run_item
from gamesre.checklists.spec import ChecklistSpec
from gamesre.checklists.versions import check_pin, compare_version, parse_requirements
from gamesre.core.paths import REPO_ROOT
from tests.unit.checklists.conftest import AT


def test_the_repositorys_requirements_are_read() -> None:
    pins = parse_requirements((REPO_ROOT / "requirements.txt").read_text())
    assert pins["apache-airflow"] == "3.3.2"
    assert "apache-airflow-providers-cncf-kubernetes" in pins and "prometheus-api-client" in pins
    assert parse_requirements("# c\nFoo_Bar[x]==1.2 ; python_version>'3'\nbaz>=2\n") == {"foo-bar": "1.2"}


@pytest.mark.parametrize(("running", "pin", "verdict"), [
    ("2.42.0+ds", "==2.42.*", "match"),
    ("2.42.0+ds", "2.42.0", "match"),
    ("v2.53.1", "==2.42.*", "drift"),
    ("0.25.0", ">=0.25,<0.28", "match"),
    ("3.3.2rc1", "==3.3.*", "match"),
    (None, "==1.0", "unknown"),
    ("not a version", "==1.0", "unknown"),
])
def test_running_versions_against_pins(running: str | None, pin: str, verdict: str) -> None:
    assert compare_version("x", running, pin).verdict == verdict
    assert compare_version("x", "1.0", None).detail == "no pin for x"


def test_pins_are_validated() -> None:
    assert check_pin("requirements.txt") == "requirements.txt"
    with pytest.raises(ValueError, match=r"neither 'requirements\.txt' nor a version specifier"):
        check_pin("latest")


def test_the_monthly_stack_item(checklists: ChecklistSpec) -> None:
    item = checklists.get("monthly-stack-versions")
    pins = parse_requirements((REPO_ROOT / "requirements.txt").read_text())
    running = {"prometheus": "2.42.0+ds", "alertmanager": "0.25.0", **{
        name: pins[name] for name in ("apache-airflow", "apache-airflow-providers-cncf-kubernetes",
                                      "apache-airflow-providers-slack", "apache-airflow-providers-standard",
                                      "apache-airflow-providers-postgres", "apache-airflow-providers-http")}}
    r = run_item(item, {"versions_running": running, "pinned_requirements": pins}, AT)
    assert r.status == "pass"
    assert r.summary.startswith("all 8 components run their pinned versions: prometheus 2.42.0+ds")
    drift = run_item(item, {"versions_running": {**running, "apache-airflow": "3.4.0", "alertmanager": None},
                            "pinned_requirements": pins}, AT)
    assert drift.status == "warn"
    assert drift.summary == ("1 component(s) differ from their pins, 1 unknown: apache-airflow runs 3.4.0, pinned "
                             "3.3.2, the running version of alertmanager is unknown")
    assert next(c for c in drift.evidence["components"] if c["component"] == "apache-airflow")["pin_source"] == \
        "requirements.txt"
