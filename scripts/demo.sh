#!/usr/bin/env bash
# Main job: set up .venv if needed, then run the example DAGs end to end against the local sandbox
# on a fresh Airflow home (.airflow-demo, embedded SQLite), each twice to show re-runs are safe.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
rm -rf .airflow-demo
exec .venv/bin/python scripts/run_examples.py
