#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install the provider with its dev tools. Idempotent: reinstalls
# only when pyproject.toml changed. Everything comes from PyPI; no system packages are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.bridge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing airflow-provider-bridge and its dependencies into .venv ..."
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import airflow_provider_bridge, airflow.sdk, pyrate_limiter, filelock, pytest"
  echo "$want" > "$stamp"
fi
