#!/usr/bin/env bash
# The JS hosts' test command: builds everything (host-js/build.sh: wasm-bindgen-cli,
# npm ci, the wasm, wasm-bindgen, wasm-opt; unchanged steps are skipped), then runs every
# JS test with node's test runner, one file at a time:
#   test/node.test.mjs     Node host (ws): demo deployment, heartbeat, async guards
#   test/deno.test.mjs     Deno host (Deno.serve + Deno.upgradeWebSocket)
#   test/bun.test.mjs      Bun host (Bun.serve websocket)
#   test/workerd.test.mjs  Worker + Durable Object in workerd (miniflare), hibernation
#   test/identity.test.mjs a fake OpenID provider on 127.0.0.1 for Node and workerd (key
#                          rotation, unknown-kid cooldown, cross-issuer kid, outage), and
#                          token expiry / refresh over a socket
#   test/close-codes.test.mjs  raw RFC 6455 violations on every runtime: 1007 / 1002 close codes
#   test/backpressure.test.mjs queued bytes reported at the engine's thresholds (a fake socket)
#   test/batch.test.mjs        a frame's batch read from wasm memory equals its batch string
#   test/bun-queue.test.mjs    the Bun host's write queue (fake sockets): one cork per socket
#                              per turn, written at once past FLUSH_AT frames, in order
#   test/bun-warmup.test.mjs   the Bun host's socket warm-up: every publish delivered, nothing
#                              left open, abandoned past its time limit, a low open-files limit
#   test/handshake.test.mjs    refused handshakes (405 / 400 / 426 / 404) on every host, the
#                          native one included: the engine's bodies, valid against the
#                          schema and byte-identical across hosts (builds the native binary)
#   test/socketio.test.mjs, test/socketio-polling.test.mjs  Socket.IO v5 / Engine.IO v4
#                          (WebSocket, long-polling, the upgrade) and socket.io-client interop
#                          against the compliance application, once per host
#                          (SIO_HOST=native|node|deno|bun|workerd; native builds the example
#                          `socketio-compliance` first)
#   test/conformance.test.mjs  the conformance live runner against all four servers
#                          (builds target/debug/conformance, the binary `cargo nextest`
#                          already built; LIVE_CONFORMANCE=0 skips)
# Each test file starts the example servers on random 127.0.0.1 ports and stops them.
# Ends with node's summary (# tests / # pass / # fail). Usage: bash host-js/test.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

bash "$HERE/build.sh"

locked=()
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then locked=(--locked); fi

# The native server for test/handshake.test.mjs (a no-op after `cargo nextest`).
(cd "$HERE/.." && cargo build ${locked[@]+"${locked[@]}"} -q -p switchboard --bin switchboard)

# The conformance live runner (test/conformance.test.mjs plays every live vector against
# each example server). Built here unless LIVE_CONFORMANCE=0; a no-op when up to date.
if [ "${LIVE_CONFORMANCE:-1}" != 0 ]; then
  s=$(date +%s.%N)
  (cd "$HERE/.." && cargo build ${locked[@]+"${locked[@]}"} -q -p switchboard-conformance --bin conformance)
  echo "host-js test: conformance runner built ($(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s)"
fi

echo
echo "host-js test: node --test (node $(node --version))"
s=$(date +%s.%N)
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
set +e
timeout --kill-after=10 600 node --test --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  test/node.test.mjs test/handlers.test.mjs test/deno.test.mjs test/bun.test.mjs test/workerd.test.mjs test/identity.test.mjs \
  test/close-codes.test.mjs test/backpressure.test.mjs test/batch.test.mjs test/bun-queue.test.mjs test/bun-warmup.test.mjs test/handshake.test.mjs test/conformance.test.mjs
rc=$?
pass="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)"
fail="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)"
pass=${pass:-0}
fail=${fail:-0}

# The Socket.IO tests (WebSocket and long-polling), once per host (the files read SIO_HOST
# when they load).
(cd "$HERE/.." && cargo build ${locked[@]+"${locked[@]}"} -q -p switchboard --example socketio-compliance) || rc=$?
for host in native node deno bun workerd; do
  echo
  echo "host-js test: socketio.test.mjs on $host"
  SIO_HOST=$host timeout --kill-after=10 400 node --test --test-concurrency=1 --test-timeout=120000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    test/socketio.test.mjs test/socketio-polling.test.mjs
  r=$?
  [ $r -eq 0 ] || rc=$r
  p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)"
  f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)"
  pass=$((pass + ${p:-0}))
  fail=$((fail + ${f:-0}))
done
set -e
echo "host-js test: JS tests took $(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s (exit $rc)"
echo "host-js: ${pass} passed, ${fail} failed"
exit $rc
