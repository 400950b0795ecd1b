#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then lint, format check, type check, and every test
# (unit, integration over real HTTP against the sandbox, multi-process, real Airflow on SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-chromium.sh   # for the UI test's browser part (skipped, with the reason, without it)
echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
echo "== pytest";      .venv/bin/python -m pytest -p no:cacheprovider --durations=12 --durations-min=15 "$@"
