"""The demo stack: the simulated game fleet, its load, its history, and the real services around them.

The demo is its own program, but it reads the one metric contract through gamesre.core.contract, so importing
the package puts the repository's plugins folder on the path.
"""
import sys
from pathlib import Path

_PLUGINS = str(Path(__file__).resolve().parents[1] / "plugins")
if _PLUGINS not in sys.path:
    sys.path.insert(0, _PLUGINS)
