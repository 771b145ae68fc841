"""The store's one error type, apart from the modules that raise it: the database, its schema and its revisions."""
from __future__ import annotations

from gamesre.core.errors import OutsideSystemError


class StoreError(OutsideSystemError):
    """The store cannot be reached or used; the message names the database (without its password)."""
