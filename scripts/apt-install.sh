#!/usr/bin/env bash
# Install Debian packages for the tests and the demo: prints every package before installing it,
# never uses sudo (as a normal user it prints the command to run instead) and is never fatal:
# what is missing then is reported by the tests that need it.
#   usage: scripts/apt-install.sh WHAT PACKAGE...
set -u
what=$1; shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not available: install $* yourself for the $what"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: for the $what run  apt-get install -y $*  as root"
  exit 0
fi
echo "installing Debian package(s) for the $what: $*"
if ! { apt-get install -y -qq "$@" >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; }; }; then
  echo "could not install $* (the $what will report what is missing)"
fi
exit 0
