#!/usr/bin/env bash
# The client SDK's test command (step `client-js` of scripts/test.sh):
#
#   1. npm ci from package-lock.json (skipped when node_modules matches the lockfile)
#   2. build: tsc (dist/, .d.ts), the browser bundle, the console; `--check` fails when
#      the committed host-native/console differs from what client-js/console builds
#   3. what the end-to-end tests run: the native binary (`cargo build -p switchboard`,
#      a no-op after the nextest step; SWITCHBOARD_BIN overrides) and the Node host's
#      wasm (host-js/build.sh, skipped when already built)
#   4. node --test, one file at a time:
#        test/unit/*.test.mjs        in-memory WebSocket: state machine, requests,
#                                    reconnects, tokens, subscriptions, rooms, filters,
#                                    generated types vs protocol-spec/schemas
#        test/e2e/e2e.test.mjs       native and Node hosts on 127.0.0.1, killed and
#                                    restarted under subscribed clients; the `ws`
#                                    package's socket closed during its handshake
#        test/e2e/streams.test.mjs   native host (SQLite, durable streams): recovery with
#                                    history across kill -9, presence, application
#                                    messages through a webhook handler
#        test/browser/browser.test.mjs  headless Chromium (scripts/setup.sh installs it):
#                                    the browser bundle against the native host, and the
#                                    console, screenshot in client-js/test-artifacts/
#   Ends with `client-js: N passed, N failed`.
#
# Usage: bash client-js/scripts/test.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$HERE"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
t() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(t)" 'BEGIN { printf "%.1f", e - s }'; }
say() { echo "client-js test: $*"; }

s=$(t)
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.switchboard-lock 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.switchboard-lock
fi
say "npm ci ($(since "$s") s)"

s=$(t)
node scripts/build.mjs --check
say "build ($(since "$s") s)"

s=$(t)
locked=()
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then locked=(--locked); fi
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
  (cd "$ROOT" && cargo build ${locked[@]+"${locked[@]}"} -q -p switchboard --bin switchboard)
fi
if [ ! -s "$ROOT/host-js/pkg/switchboard_wasm_bg.wasm" ] || [ ! -d "$ROOT/host-js/node_modules/ws" ]; then
  bash "$ROOT/host-js/build.sh"
fi
say "servers ready ($(since "$s") s)"

s=$(t)
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
# In a process group of its own: whatever a test file leaves behind when the runner kills
# it (a server it started) is ended with the group.
set +e
setsid timeout --kill-after=10 300 node --test --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  test/unit/*.test.mjs test/e2e/e2e.test.mjs test/e2e/streams.test.mjs test/browser/browser.test.mjs &
group=$!
wait "$group"
rc=$?
kill -KILL -- "-$group" 2>/dev/null
set -e
pass="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)"
fail="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)"
say "node --test took $(since "$s") s (exit $rc)"
echo "client-js: ${pass:-0} passed, ${fail:-0} failed"
exit $rc
