#!/usr/bin/env bash
# The multi-host demo: every example DAG on a real CeleryExecutor deployment on this machine —
# scheduler, DAG processor, triggerer, API server and two Celery workers (prefork, 2 processes
# each), each a process group with its own AIRFLOW_HOME, sharing only environment variables —
# with a PostgreSQL metadata database and a Redis broker (both from PyPI wheels, started here),
# against the vendor sandbox. Prints each DAG's runs, which worker ran which task, and per vendor
# the sign-ins, 429s and requests; stops everything it started (also on Ctrl-C or failure).
# Exit status 0 only when every run succeeded, each vendor signed in once and none answered 429.
#
#   bash scripts/cluster-demo.sh                    # the provider's state on PostgreSQL
#   bash scripts/cluster-demo.sh --state redis      # ... on Redis
#   bash scripts/cluster-demo.sh --records 5000 --keep   # more customers to sync; keep homes and logs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh  # the dev lock: the Celery provider, the PostgreSQL and Redis servers
exec .venv/bin/python -m airflow_provider_bridge.sandbox.cluster "$@"
