#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then lint, format check, type check, and every test
# (unit, integration over real HTTP against the sandbox, multi-process, real Airflow on SQLite) on
# the latest Airflow; then the matrix subset on the lowest supported Airflow (scripts/test-matrix.sh,
# its own virtualenv). Arguments go to the main pytest run; with arguments the matrix is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-chromium.sh   # for the UI test's browser part (skipped, with the reason, without it)
echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
echo "== pytest";      .venv/bin/python -m pytest -p no:cacheprovider --durations=25 --durations-min=8 "$@"
if [ "$#" -eq 0 ]; then
  bash scripts/test-matrix.sh
fi
