#!/usr/bin/env bash
# The lowest lane: the tests on the lowest supported Airflow (requirements/airflow-lowest.in) with
# every direct dependency at its floor (requirements/airflow-lowest.lock, resolved lowest-direct:
# requests 2.32.4, filelock 3.20.3, common-compat 1.23.0, psycopg 3.1.4, redis 5.0.0, OpenLineage
# provider 2.1.0, ...): a named subset in a virtualenv of its own, .venv-airflow-lowest.
# The full suite runs on the latest Airflow (scripts/test.sh, which runs this too). The subset:
# provider registration, config and the connection forms (tests/test_provider_info.py), the three
# forms and their Test button served by a real `airflow api-server` (tests/ui/test_connection_forms.py),
# every operator in a real DAG run under dag.test, and the deferrable change sensor (deferring to
# its trigger and resuming), the state backends' contract on SQLite, PostgreSQL and Redis (the
# postgres and redis extras at their floors), the OpenLineage facets and the commands (python -m
# forms; `airflow bridge` skips, as 3.1 does not read the cli key) — kept small so CI stays well
# under 30 minutes; pass other tests as arguments to run them on the lowest Airflow too.
# `--install-only` sets up the virtualenv and stops (scripts/test.sh runs it beside its own set-up).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=.venv-airflow-lowest
lowest=$(sed -n 's/^apache-airflow==\([0-9.]*\)$/\1/p' requirements/airflow-lowest.in)
if [ ! -x "$venv/bin/python" ]; then
  "$PYTHON" -m venv "$venv"
fi
stamp=$venv/.bridge-installed
want=$(cat pyproject.toml requirements/airflow-lowest.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing Airflow $lowest and the provider into $venv ..."
  "$venv/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  if ! out=$("$venv/bin/python" -m pip install --quiet --require-hashes -r requirements/airflow-lowest.lock 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install --quiet --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -m pip check
  echo "$want" > "$stamp"
fi
installed=$("$venv/bin/python" -c 'import airflow; print(airflow.__version__)')
if [ "$installed" != "$lowest" ]; then
  echo "$venv has Airflow $installed, expected $lowest" >&2
  exit 1
fi
if [ "${1-}" = "--install-only" ]; then
  echo "$venv: Airflow $installed"
  exit 0
fi
echo "== pytest on Airflow $installed (the lowest supported)"
exec "$venv/bin/python" -m pytest -p no:cacheprovider --durations=5 --durations-min=15 \
  tests/test_provider_info.py \
  tests/ui/test_connection_forms.py \
  tests/operators/test_operators_in_airflow.py::test_every_operator_in_a_real_dag_run \
  tests/sensors/test_entity_change_sensor.py::test_deferrable_sensor_defers_and_resumes_with_the_changes \
  tests/state/test_backend_contract.py \
  tests/test_airflow_cli.py \
  tests/operators/test_openlineage.py \
  "$@"
