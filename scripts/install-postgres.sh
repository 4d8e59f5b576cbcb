#!/usr/bin/env bash
# PostgreSQL's server programs (initdb, pg_ctl) for the `agnostic` tests, which start a
# throwaway cluster (tests/real_servers.py). Never fatal and never uses sudo: without them those
# tests say what is missing (and fail under CI=true).
set -u
command -v initdb >/dev/null 2>&1 && exit 0
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
exec bash "$(dirname "$0")/apt-install.sh" "PostgreSQL-backed MLflow tests (initdb, pg_ctl)" postgresql
