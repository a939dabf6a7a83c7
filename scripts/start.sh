#!/bin/sh
# Quick start: installs what is missing, builds, and starts the hub on SQLite in ./data.
# Extra arguments go to `fleetkey hub start` (e.g. `npm start -- --api-port 9443`).
set -eu
cd "$(dirname "$0")/.."
if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "fleetkey: installing npm packages (first run compiles better-sqlite3, ~2 minutes)..." >&2
  npm ci --no-audit --no-fund
fi
npm run --silent build
exec node --max-semi-space-size=64 packages/cli/bin/fleetkey.js hub start "$@" # as bin/fleetkey.js (ADR 0033)
