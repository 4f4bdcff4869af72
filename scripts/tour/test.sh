#!/usr/bin/env bash
# The README tour test: installs the pinned command-line WebSocket client (wscat, npm,
# scripts/tour/package-lock.json), builds the native server (the dev build `cargo nextest`
# already made), then runs every command of README.md's "Tour" section against a fresh
# demo server on a random 127.0.0.1 port and checks the documented answers
# (scripts/tour/tour.test.mjs explains the markers). Ends with node's summary.
#
#   bash scripts/tour/test.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

locked=()
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then locked=(--locked); fi

command -v curl >/dev/null 2>&1 || { echo "tour: curl is missing (bash scripts/setup.sh installs it)" >&2; exit 2; }
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$ROOT" && cargo build ${locked[@]+"${locked[@]}"} -q -p switchboard --bin switchboard)
cd "$ROOT"
exec timeout --kill-after=10 300 node --test --test-reporter=spec scripts/tour/tour.test.mjs
