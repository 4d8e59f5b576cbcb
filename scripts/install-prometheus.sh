#!/usr/bin/env bash
# Debian's prometheus package, which provides promtool for the alert-rule tests
# (tests/integration/monitoring/test_prometheus_rules.py). Never fatal and never uses sudo:
# without promtool those tests say why (and fail under CI=true).
set -u
command -v promtool >/dev/null 2>&1 && exit 0
exec bash "$(dirname "$0")/apt-install.sh" "Prometheus alert-rule tests (promtool)" prometheus
