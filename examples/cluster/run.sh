#!/usr/bin/env bash
# A local try-out of a Switchboard cluster: one redis-server, one PostgreSQL and three
# native nodes on 127.0.0.1, each with the demo config, sharing records in PostgreSQL
# (`--store postgres://...`). Ctrl-C stops everything.
#
#   bash examples/cluster/run.sh            # nodes on 3001, 3002, 3003; Redis on 6390; PostgreSQL on 5440
#   REDIS_PORT=6400 PG_PORT=5450 BASE_PORT=4001 bash examples/cluster/run.sh
#   STORE=memory bash examples/cluster/run.sh   # no PostgreSQL: each node keeps its own records
#
# Needs redis-server and PostgreSQL (Debian's redis-server and postgresql packages: bash
# scripts/setup.sh installs them; SWITCHBOARD_PG_BIN names another directory holding
# initdb/pg_ctl) and builds the switchboard binary with cargo. Redis and PostgreSQL keep
# nothing (temp dirs; PostgreSQL runs as the `postgres` user when started by root, which
# it refuses to run as). Try it: connect
# `wscat -c ws://127.0.0.1:3001/` and `wscat -c ws://127.0.0.1:3002/`, subscribe both to
# {"type":"subscribe","channel":"chat:lobby"} and publish from one; ask
# {"type":"presence","channel":"chat:lobby"} on the third. See host-native/README.md,
# "Cluster (Redis)".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REDIS_PORT="${REDIS_PORT:-6390}"
PG_PORT="${PG_PORT:-5440}"
STORE="${STORE:-postgres}"
BASE_PORT="${BASE_PORT:-3001}"
NODES="${NODES:-3}"

command -v redis-server >/dev/null 2>&1 \
  || { echo "redis-server is missing: bash scripts/setup.sh installs it" >&2; exit 1; }
if [ "$STORE" = postgres ]; then
  PG_BIN="${SWITCHBOARD_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] \
    || { echo "PostgreSQL is missing: bash scripts/setup.sh installs it (or STORE=memory)" >&2; exit 1; }
fi
cargo build -q -p switchboard --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard"

TMP="$(mktemp -d)"
PIDS=()
AS_PG=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -f "$TMP/pg/data/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
  >"$TMP/redis.log" 2>&1 &
PIDS+=($!)

store_args=(--memory)
if [ "$STORE" = postgres ]; then
  mkdir -p "$TMP/pg"
  if [ "$(id -u)" = 0 ]; then
    chmod 755 "$TMP"
    chown postgres: "$TMP/pg"
    AS_PG=(runuser -u postgres --)
  fi
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$TMP/pg/data" -U switchboard --auth=trust \
    --encoding=UTF8 --no-locale >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; exit 1; }
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/postgres.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $TMP/pg" start >/dev/null \
    || { cat "$TMP/pg/postgres.log" >&2; exit 1; }
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U switchboard switchboard
  store_args=(--store "postgres://switchboard@127.0.0.1:$PG_PORT/switchboard")
  echo "postgresql: postgres://switchboard@127.0.0.1:$PG_PORT/switchboard (log $TMP/pg/postgres.log)"
fi

for i in $(seq 0 $((NODES - 1))); do
  port=$((BASE_PORT + i))
  mkdir -p "$TMP/node$i"
  (cd "$TMP/node$i" && exec "$BIN" serve --config "$ROOT/examples/demo.toml" \
    --listen "127.0.0.1:$port" --broker "redis://127.0.0.1:$REDIS_PORT" "${store_args[@]}" \
    >"$TMP/node$i.out" 2>"$TMP/node$i.log") &
  PIDS+=($!)
  echo "node $i: ws://127.0.0.1:$port/   http://127.0.0.1:$port/readyz   log $TMP/node$i.log"
done
echo "redis: 127.0.0.1:$REDIS_PORT (log $TMP/redis.log). Ctrl-C stops everything."
wait
