#!/usr/bin/env bash
# Regenerate the lock files, every package pinned with its hashes, for every platform (--universal)
# on Python 3.11+:
#   requirements/dev.lock            the development and test environment (pyproject's `dev` extra)
#   requirements/airflow-lowest.lock the lowest supported Airflow and the matrix subset's needs
#                                    (requirements/airflow-lowest.in), for scripts/test-matrix.sh
# Without arguments it keeps every pin that still satisfies pyproject.toml; `bash scripts/lock.sh
# --upgrade` takes the newest releases. uv resolves them (from PyPI, in a throw-away virtualenv):
# pip has no lock of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet "uv>=0.8" 2>&1 | grep -v "^WARNING: Location" || true

lock() {  # lock OUTPUT HEADER SOURCES...
  local out=$1 header=$2
  shift 2
  local keep=()
  if [ -f "$out" ] && [[ " ${EXTRA_ARGS[*]-} " != *" --upgrade "* ]]; then
    keep=(-c "$out")
  fi
  "$tools/venv/bin/uv" pip compile "$@" --generate-hashes --universal --python-version 3.11 \
    --no-header --quiet -o "$tools/out.lock" "${keep[@]}" "${EXTRA_ARGS[@]}"
  { echo "$header"; grep -v -e "^    #   -c .*\.lock$" "$tools/out.lock"; } > "$tools/final.lock"
  mv "$tools/final.lock" "$out"
  echo "$out: $(grep -c '^[A-Za-z0-9]' "$out") packages pinned"
}

EXTRA_ARGS=("$@")
lock requirements/dev.lock "# The development and test environment, exactly as tested: every package pinned with its hashes.
# Installed by scripts/bootstrap.sh; regenerate with \`bash scripts/lock.sh\` (add --upgrade to take
# newer releases) after changing the dependencies in pyproject.toml, then run the test suite." \
  pyproject.toml --extra dev
lock requirements/airflow-lowest.lock "# The lowest supported Airflow and what the matrix subset of the tests needs, pinned with hashes
# (requirements/airflow-lowest.in; regenerate with scripts/lock.sh). Installed by scripts/test-matrix.sh." \
  pyproject.toml requirements/airflow-lowest.in
