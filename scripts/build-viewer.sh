#!/usr/bin/env bash
# Build the web app (viewer/ → viewer/dist, served by dxhub at /) when it is missing or its
# sources changed: `npm install` of the locked versions while package-lock.json changed
# (`npm install --no-save`, not `npm ci`: npm 11 leaves rollup's optional per-platform
# packages out of the lock file, which `npm ci` then refuses), then `npm run build`
# (tsc + vite).
# Needs node and npm (Debian: nodejs npm; installed by the callers when missing).
#   bash scripts/build-viewer.sh      # exit 0: viewer/dist/index.html is current
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
V="$ROOT/viewer"
command -v npm >/dev/null || { echo "build-viewer: npm is required (apt-get install nodejs npm)" >&2; exit 1; }

lock=$(sha256sum "$V/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$V/node_modules/.dxhub-lock.sha256" 2>/dev/null)" != "$lock" ]; then
  echo "build-viewer: npm install in viewer/ …" >&2
  (cd "$V" && npm install --no-save --no-audit --no-fund --loglevel=error >&2)
  printf '%s\n' "$lock" >"$V/node_modules/.dxhub-lock.sha256"
fi
src=$(cd "$V" && find src index.html vite.config.ts tsconfig.json package-lock.json -type f -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$V/dist/.dxhub-src.sha256" 2>/dev/null)" != "$src" ] || [ ! -f "$V/dist/index.html" ]; then
  echo "build-viewer: npm run build in viewer/ …" >&2
  (cd "$V" && npm run build --silent >&2)
  printf '%s\n' "$src" >"$V/dist/.dxhub-src.sha256"
fi
