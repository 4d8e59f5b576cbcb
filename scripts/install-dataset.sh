#!/usr/bin/env bash
# Debian's dataset-fashion-mnist, when it is not there yet. Never fatal: the data layer falls
# back to the user cache and the official download.
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -f "$dir/train-images-idx3-ubyte" ]; then
  exit 0
fi
exec bash "$(dirname "$0")/apt-install.sh" "Fashion-MNIST data" dataset-fashion-mnist
