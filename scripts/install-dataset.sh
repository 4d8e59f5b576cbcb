#!/usr/bin/env bash
# Install Debian's dataset-fashion-mnist package when apt is available and we may use it.
# Never fatal: the data layer falls back to the user cache and the official download.
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -f "$dir/train-images-idx3-ubyte" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not available: the data will be downloaded from the official mirrors"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd="sudo -n"
else
  sudo_cmd=""
fi
echo "installing Debian package dataset-fashion-mnist"
if ! { $sudo_cmd apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
  || { $sudo_cmd apt-get update -qq >/dev/null 2>&1 \
       && $sudo_cmd apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; }; then
  echo "could not install dataset-fashion-mnist: the data will come from another source"
fi
exit 0
