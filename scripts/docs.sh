#!/usr/bin/env bash
# Build the docs pages (mkdocs.yml, docs/) into site/ with MkDocs and the Material theme; every
# warning is an error (a broken link or anchor, a missing snippet file, a docstring mkdocstrings
# cannot read). Sets up .venv first if needed. The code examples the pages show are files the
# tests run (tests/docs/test_docs.py). `bash scripts/docs.sh serve` previews on localhost:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ "${1-}" = "serve" ]; then
  exec .venv/bin/mkdocs serve
fi
# (MkDocs 1.6 and Material 9 print a notice about MkDocs 2.0 on every build; it asks nothing of us)
export NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true
.venv/bin/mkdocs build --strict --site-dir site 2>&1 | { grep -v -e "^INFO" -e "^\s*$" || true; }
echo "docs: $(find site -name '*.html' | wc -l) pages in site/"
