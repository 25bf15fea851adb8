#!/usr/bin/env bash
# Create the virtualenv and install the project: `bootstrap.sh PYTHON VENV run|dev`.
set -euo pipefail
python_bin=$1 venv=$2 extra=$3
if ! "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  echo "error: Python 3.11 is required ($python_bin is $("$python_bin" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "• Creating the virtual environment in $venv"
  "$python_bin" -m venv "$venv"
fi
echo "• Installing packages (this takes a minute on a fresh machine)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
if [ "$extra" = dev ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
else
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e .
fi
