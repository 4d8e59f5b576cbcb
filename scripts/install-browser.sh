#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; its own
# browser download does not work offline). Never fatal: without Chromium the browser tests skip
# and say why.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not available: install Chromium yourself for the browser tests"
  exit 0
fi
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo -n"
echo "installing Debian packages chromium and chromium-driver (browser tests)"
if ! { $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
  || { $sudo_cmd apt-get update -qq >/dev/null 2>&1 \
       && $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; }; then
  echo "could not install chromium: the browser tests will be skipped"
fi
exit 0
