"""The checklist evaluators. Importing this package imports every module in it, which registers them.

To add an evaluator, add a module here (or a function to one) decorated with
`@gamesre.checklists.registry.evaluator(...)`; no list to update. Modules whose names start with `_` are
helpers and are not imported by this loop.
"""
from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
