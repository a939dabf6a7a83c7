#!/bin/sh
# The one test command (README, .ci/run): installs what tests need, builds, runs every tier.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-test-deps.sh
if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
node scripts/run-tests.mjs all
