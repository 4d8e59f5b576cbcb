#!/usr/bin/env bash
# Fetch Mermaid (the diagrams of the docs) from the npm registry into build/mermaid/, so that
# the site serves its own copy instead of loading it from a CDN (scripts/mkdocs_hooks.py adds
# it when the file is there). The version is pinned and npm checks the tarball against the
# registry's integrity hash; the expected hash is checked here too. Without network the site
# still builds and its diagrams load Mermaid from unpkg.com, as Material does by default.
set -euo pipefail
VERSION=11.17.2
INTEGRITY_FILE=scripts/mermaid.integrity
DEST=build/mermaid
if [[ -f "$DEST/mermaid.min.js" && "$(cat "$DEST/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "note: npm not found; the site's diagrams will load Mermaid from unpkg.com" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! npm pack "mermaid@$VERSION" --pack-destination "$work" --json > "$work/pack.json" 2> "$work/err"; then
  echo "note: could not fetch mermaid@$VERSION from npm ($(tail -1 "$work/err")); the site's diagrams will load it from unpkg.com" >&2
  exit 0
fi
expected=$(cat "$INTEGRITY_FILE")
actual=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/pack.json")
if [[ "$actual" != "$expected" ]]; then
  echo "error: mermaid@$VERSION integrity $actual, expected $expected ($INTEGRITY_FILE)" >&2
  exit 1
fi
tar -xzf "$work"/mermaid-"$VERSION".tgz -C "$work" package/dist/mermaid.min.js
mkdir -p "$DEST"
mv "$work/package/dist/mermaid.min.js" "$DEST/mermaid.min.js.tmp"
mv "$DEST/mermaid.min.js.tmp" "$DEST/mermaid.min.js"
echo "$VERSION" > "$DEST/VERSION"
echo "vendored mermaid@$VERSION into $DEST"
