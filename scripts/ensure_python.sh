#!/usr/bin/env bash
# Check that the Python the Makefile was given is 3.11 and can make a virtualenv; say what to do if not.
set -euo pipefail
py="${1:-python3.11}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "$py is not installed: install Python 3.11 (Debian 12: apt-get install python3 python3-venv) or run make PYTHON=/path/to/python3.11" >&2
  exit 1
fi
"$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
  echo "$py is $("$py" -V 2>&1), but this project pins Python 3.11: run make PYTHON=/path/to/python3.11" >&2; exit 1; }
"$py" -c 'import venv, ensurepip' 2>/dev/null || {
  echo "$py cannot create virtualenvs: apt-get install python3-venv, then try again" >&2; exit 1; }
