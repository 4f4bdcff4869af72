#!/usr/bin/env bash
# A local try-out of a Switchboard cluster: one redis-server and three native nodes on
# 127.0.0.1, each with the demo config and in-memory records. Ctrl-C stops everything.
#
#   bash examples/cluster/run.sh            # nodes on 3001, 3002, 3003; Redis on 6390
#   REDIS_PORT=6400 BASE_PORT=4001 bash examples/cluster/run.sh
#
# Needs redis-server (bash scripts/setup.sh installs it) and builds the switchboard
# binary with cargo. Redis keeps nothing (temp dir, no snapshots). Try it: connect
# `wscat -c ws://127.0.0.1:3001/` and `wscat -c ws://127.0.0.1:3002/`, subscribe both to
# {"type":"subscribe","channel":"chat:lobby"} and publish from one; ask
# {"type":"presence","channel":"chat:lobby"} on the third. See host-native/README.md,
# "Cluster (Redis)".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REDIS_PORT="${REDIS_PORT:-6390}"
BASE_PORT="${BASE_PORT:-3001}"
NODES="${NODES:-3}"

command -v redis-server >/dev/null 2>&1 \
  || { echo "redis-server is missing: bash scripts/setup.sh installs it" >&2; exit 1; }
cargo build -q -p switchboard --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard"

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
  >"$TMP/redis.log" 2>&1 &
PIDS+=($!)

for i in $(seq 0 $((NODES - 1))); do
  port=$((BASE_PORT + i))
  mkdir -p "$TMP/node$i"
  (cd "$TMP/node$i" && exec "$BIN" serve --config "$ROOT/examples/demo.toml" \
    --listen "127.0.0.1:$port" --broker "redis://127.0.0.1:$REDIS_PORT" --memory \
    >"$TMP/node$i.out" 2>"$TMP/node$i.log") &
  PIDS+=($!)
  echo "node $i: ws://127.0.0.1:$port/   http://127.0.0.1:$port/readyz   log $TMP/node$i.log"
done
echo "redis: 127.0.0.1:$REDIS_PORT (log $TMP/redis.log). Ctrl-C stops everything."
wait
