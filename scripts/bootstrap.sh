#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install the provider with its dev tools, exactly as tested:
# every package at the version and hash pinned in requirements/dev.lock (regenerate it with
# scripts/lock.sh), then the provider itself, editable. Idempotent: reinstalls only when
# pyproject.toml or the lock changed. Everything comes from PyPI; no system packages are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
  "$PYTHON" -m venv .venv
fi
pip_quiet() {  # pip, without the machine's noise about a missing local index; fails when pip fails
  local out
  if ! out=$(.venv/bin/python -m pip --quiet "$@" 2>&1); then
    echo "$out" >&2
    return 1
  fi
  echo "$out" | grep -v "^WARNING: Location" || true
}
stamp=.venv/.bridge-installed
want=$(cat pyproject.toml requirements/dev.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing airflow-provider-bridge and its dependencies into .venv ..."
  pip_quiet install --upgrade pip
  pip_quiet install --require-hashes -r requirements/dev.lock
  pip_quiet install --no-deps -e .
  .venv/bin/python -m pip check
  .venv/bin/python -c "import airflow_provider_bridge, airflow.sdk, filelock, pytest"
  echo "$want" > "$stamp"
fi
