#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; its own browser
# download does not work offline). Never fatal: without Chromium the browser tests say why (and
# fail under CI=true).
set -u
[ -x /usr/bin/chromium ] && exit 0
exec bash "$(dirname "$0")/apt-install.sh" "browser tests" chromium chromium-driver
