"""Entry point of `python -m gamesre`."""
import sys

from gamesre.cli import main

if __name__ == "__main__":  # Airflow's plugin manager may import this file; only run as a program
    sys.exit(main())
