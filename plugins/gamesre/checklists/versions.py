"""Running versions against pinned ones: PEP 440 pins, read from requirements.txt or written as specifiers.

Debian package versions such as Prometheus's `2.42.0+ds` read as 2.42.0 with a local label, which a pin
without a local label ignores (PEP 440), so `==2.42.*` and `==2.42.0` both match it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

FROM_REQUIREMENTS = "requirements.txt"
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def parse_requirements(text: str) -> dict[str, str]:
    """Exact pins (`name==version`, extras and markers ignored) by canonical package name."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(3)
    return pins


def specifier(pin: str) -> SpecifierSet:
    """A pin as a specifier set: `2.42.0` means `==2.42.0`; `==2.42.*`, `>=0.25,<0.28` are taken as written."""
    text = pin.strip()
    return SpecifierSet(text if text[:1] in "=<>!~" else f"=={text}")


def check_pin(pin: str) -> str:
    """`pin` when it is the literal FROM_REQUIREMENTS or a valid specifier; ValueError otherwise."""
    if pin == FROM_REQUIREMENTS:
        return pin
    try:
        specifier(pin)
    except InvalidSpecifier:
        raise ValueError(f"{pin!r} is neither {FROM_REQUIREMENTS!r} nor a version specifier like ==2.42.*") from None
    return pin


@dataclass(frozen=True)
class VersionCheck:
    component: str
    running: str | None
    pinned: str | None
    verdict: Literal["match", "drift", "unknown"]
    detail: str

    def to_dict(self) -> dict[str, str | None]:
        return {"component": self.component, "running": self.running, "pinned": self.pinned,
                "verdict": self.verdict, "detail": self.detail}


def compare_version(component: str, running: str | None, pinned: str | None) -> VersionCheck:
    """Whether the running version satisfies the pin; `unknown` when either side is missing or unreadable."""
    if pinned is None:
        return VersionCheck(component, running, None, "unknown", f"no pin for {component}")
    if running is None or not running.strip():
        return VersionCheck(component, None, pinned, "unknown", f"the running version of {component} is unknown")
    try:
        version = Version(running.strip())
    except InvalidVersion:
        return VersionCheck(component, running, pinned, "unknown", f"{running!r} is not a version")
    if specifier(pinned).contains(version, prereleases=True):
        return VersionCheck(component, running, pinned, "match", f"{component} {running} satisfies {pinned}")
    return VersionCheck(component, running, pinned, "drift", f"{component} runs {running}, pinned {pinned}")


__all__ = ["FROM_REQUIREMENTS", "VersionCheck", "check_pin", "compare_version", "parse_requirements", "specifier"]
