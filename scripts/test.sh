#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then lint, format check, type check, the docs build
# (warnings are errors), and every test (unit, integration over real HTTP against the sandbox,
# multi-process, real Airflow on SQLite, real PostgreSQL/Redis servers, real Airflow deployments)
# on the latest Airflow; then the matrix subset on the lowest supported versions
# (scripts/test-matrix.sh). Arguments go to the main pytest run; with arguments the matrix is skipped.
#
# What it installs: .venv from requirements/dev.lock (scripts/bootstrap.sh, 195 packages,
# only when pyproject.toml or the lock changed); a second virtualenv, .venv-airflow-lowest, from
# requirements/airflow-lowest.lock (built in the background meanwhile); and, when run as root,
# Chromium through apt-get (scripts/install-chromium.sh, for the budgets-page test's browser half;
# skipped with the reason otherwise). How long: about 13 minutes on a fresh clone of a 2-core
# machine, most of it pytest (see CONTRIBUTING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
matrix=$(mktemp)
if [ "$#" -eq 0 ]; then  # the lowest Airflow's virtualenv installs meanwhile (no test runs yet)
  bash scripts/test-matrix.sh --install-only > "$matrix" 2>&1 &
  matrix_pid=$!
fi
bash scripts/bootstrap.sh
bash scripts/install-chromium.sh   # for the UI test's browser part (skipped, with the reason, without it)
echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
echo "== docs";        bash scripts/docs.sh
if [ "$#" -eq 0 ]; then
  status=0
  wait "$matrix_pid" || status=$?
  cat "$matrix"
  [ "$status" -eq 0 ] || { echo "setting up the lowest Airflow failed (exit $status)" >&2; exit "$status"; }
fi
rm -f "$matrix"
# every tier, in parallel (pyproject's addopts: -n auto --dist loadgroup), the slowest ten printed
echo "== pytest";      .venv/bin/python -m pytest -p no:cacheprovider --all --durations=10 "$@"
if [ "$#" -eq 0 ]; then
  bash scripts/test-matrix.sh
fi
