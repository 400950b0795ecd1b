#!/usr/bin/env bash
# Regenerate the lock files, every package pinned with its hashes, for every platform (--universal)
# on Python 3.11+:
#   requirements/dev.lock            the development and test environment: the provider's user
#                                    extras and pyproject's `dev` dependency group (tests, lint,
#                                    docs), at the newest versions
#   requirements/airflow-lowest.lock the lowest lane, for scripts/test-matrix.sh: the lowest
#                                    supported Airflow (requirements/airflow-lowest.in) and every
#                                    direct dependency and user extra at its FLOOR (uv's
#                                    `--resolution lowest-direct`), so the floors in pyproject.toml
#                                    are the versions that lane tests
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
    if [ -n "${LOWEST-}" ]; then
      # the lowest lane keeps its indirect pins but not its direct ones (those go to their floors):
      # a newer indirect release can break an old Airflow (cryptography 51 breaks 3.1.8's Fernet)
      python3 - "$out" "$tools/keep.txt" <<'PY'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
texts = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
texts += [line for line in open("requirements/airflow-lowest.in") if line.strip() and not line.startswith("#")]
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
direct = {norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)", text).group(1)) for text in texts}
pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*==[^\s;\\]+(?: ; [^\\\n]+)?)", open(sys.argv[1]).read(), re.M)
pins = [pin.rstrip() for pin in pins]
keep = [pin for pin in pins if norm(pin.split("==")[0]) not in direct]
open(sys.argv[2], "w").write("\n".join(keep) + "\n")
PY
      keep=(-c "$tools/keep.txt")
    else
      keep=(-c "$out")
    fi
  fi
  rm -f "$tools/out.lock"  # uv prefers the versions of an existing output file
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
  pyproject.toml --extra postgres --extra redis --extra openlineage --extra celery --extra sandbox \
  --group pyproject.toml:dev
LOWEST=1
lock requirements/airflow-lowest.lock "# The lowest supported Airflow and what the matrix subset of the tests needs, pinned with hashes
# (requirements/airflow-lowest.in; regenerate with scripts/lock.sh). Installed by scripts/test-matrix.sh." \
  pyproject.toml --extra postgres --extra redis --extra openlineage --extra sandbox \
  requirements/airflow-lowest.in --resolution lowest-direct
