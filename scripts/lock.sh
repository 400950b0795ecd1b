#!/usr/bin/env bash
# Regenerate requirements/dev.lock: the development and test environment (the provider's
# dependencies and its `dev` extra), every package pinned with its hashes, for every platform
# (--universal) on Python 3.11+. Without arguments it keeps every pin that still satisfies
# pyproject.toml; `bash scripts/lock.sh --upgrade` takes the newest releases. uv resolves it (from
# PyPI, into a throwaway virtualenv): pip has no lock of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet "uv>=0.8" 2>&1 | grep -v "^WARNING: Location" || true
header='# The development and test environment, exactly as tested: every package pinned with its hashes.
# Installed by scripts/bootstrap.sh; regenerate with `bash scripts/lock.sh` (add --upgrade to take
# newer releases) after changing the dependencies in pyproject.toml, then run the test suite.'
"$tools/venv/bin/uv" pip compile pyproject.toml --extra dev --generate-hashes --universal \
  --python-version 3.11 --no-header --quiet -o "$tools/dev.lock" \
  $( [ -f requirements/dev.lock ] && [[ " $* " != *" --upgrade "* ]] && echo "-c requirements/dev.lock" ) "$@"
{ echo "$header"; grep -v -e "^    #   -c requirements/dev.lock$" -e "^    #   -c .*dev.lock$" "$tools/dev.lock"; } > "$tools/out"
mv "$tools/out" requirements/dev.lock
echo "requirements/dev.lock: $(grep -c '^[A-Za-z0-9]' requirements/dev.lock) packages pinned"
