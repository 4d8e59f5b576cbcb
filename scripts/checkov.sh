#!/usr/bin/env bash
# Scan infrastructure/terraform with checkov, offline. checkov lives in its own virtual
# environment (.venv-checkov, from requirements/checkov.txt): its pins conflict with the main
# one. The environment is created on first use and reused after that.
# Every check must pass; a deliberate exception is a `#checkov:skip=CKV_...:<reason>` comment
# inside the resource it concerns. Extra arguments go to checkov (e.g. `-o json`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${CHECKOV_VENV:-.venv-checkov}
if [ ! -x "$VENV/bin/checkov" ]; then
  echo "creating $VENV (checkov from requirements/checkov.txt)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements/checkov.txt 2>&1 \
    | { grep -v "^WARNING: Location 'file://" || true; } >&2
fi
exec "$VENV/bin/checkov" -d infrastructure/terraform --framework terraform \
  --skip-download --download-external-modules false --quiet --compact "$@"
