"""Backends registered by kind: one registry per family (deploy traffic, chaos faults, event scaling, ...).

A domain owns its family's interface and its registry; each backend module registers its kind with a factory.
`gamesre.integrations.backends` registers the product's own kinds. More kinds come from the modules named in
GAMESRE_EXTENSIONS (comma-separated, imported on the first lookup of a kind nobody registered): the demo's
`local` pieces that control the demo fleet's processes come that way, so the product never imports the demo.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

EXTENSIONS_ENV = "GAMESRE_EXTENSIONS"
_loaded: set[str] = set()


class UnknownBackend(LookupError):
    """No backend of that kind is registered; the message names the family, the kind and the known kinds."""


def load_extensions() -> list[str]:
    """Import the modules named in GAMESRE_EXTENSIONS (once each); returns their names."""
    names = [n.strip() for n in os.environ.get(EXTENSIONS_ENV, "").split(",") if n.strip()]
    for name in names:
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)
    return names


class Registry(Generic[T]):
    """Factories of one family of backends, by kind."""

    def __init__(self, family: str):
        self.family = family
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, kind: str, factory: Callable[..., T]) -> Callable[..., T]:
        """Register `factory` for `kind` (a second registration of the same kind replaces the first)."""
        self._factories[kind] = factory
        return factory

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def create(self, kind: str, *args: Any, **kwargs: Any) -> T:
        """A backend of `kind` from its factory; UnknownBackend when no module registered it."""
        if kind not in self._factories:
            extensions = load_extensions()
        if kind not in self._factories:
            where = (f"the extension modules {', '.join(extensions)} did not register it" if extensions else
                     f"no extension module is named in {EXTENSIONS_ENV} (the demo's local kinds come from "
                     "demo.backends)")
            raise UnknownBackend(f"no {self.family} backend of kind {kind!r} is registered (known: "
                                 f"{', '.join(self.kinds()) or 'none'}); {where}")
        return self._factories[kind](*args, **kwargs)
