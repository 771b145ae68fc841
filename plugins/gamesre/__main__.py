"""Entry point of `python -m gamesre`."""
import sys

from gamesre.cli import main

sys.exit(main())
