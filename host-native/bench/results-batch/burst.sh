#!/usr/bin/env bash
# The burst's server CPU with and without batches, in one run (2026-12-07): `perf record`
# (4 kHz, no call graphs) of each server on CPU 0 over a whole burst run, wsload on CPU 1
# publishing 3000 frames at full speed to 1000 subscribers (3 M deliveries), for Bun's
# peer, the build before (BEFORE, main 41f19c0) and this checkout's; compare.py sums the
# samples by symbol. Same PROJECT, BEFORE and WSLOAD as run.sh; OUT names the output.
# Usage: PROJECT=... BEFORE=... WSLOAD=... OUT=burst-ab1 bash burst.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
burst() {
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local spid=$!
  sleep 2
  local sub='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
  local pub='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
  perf record -F 4000 -p "$spid" -o "$TMP/perf.$name" 2>/dev/null &
  local rec=$!
  sleep 0.3
  taskset -c 1 "$WSLOAD/target/release/wsload" fanout --url "ws://127.0.0.1:$port/" --subs 1000 --msgs 3000 \
    --rate 1000000 --greeting --sub "$sub" --pub "$pub" --pid "$spid" --max-secs 60 >"$TMP/$name.json" 2>/dev/null
  kill -INT $rec; wait $rec || true
  kill "$spid"; wait "$spid" 2>/dev/null || true
  perf report -i "$TMP/perf.$name" --no-children --sort dso,sym -F overhead,sample,dso,sym 2>/dev/null >"$TMP/$name.txt"
}
NATCFG=$PROJECT/host-native/bench/wsload.toml
cd "$WSLOAD"
burst bun 18150 node_modules/.bin/bun run peers/bun-server.ts --port 18150
burst native 18151 "$PROJECT/target/release/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18151 --memory
python3 "$HERE/../results-paced-perf/compare.py" "$TMP" >"$HERE/$OUT-after.txt"
burst native 18152 "$BEFORE/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18152 --memory
python3 "$HERE/../results-paced-perf/compare.py" "$TMP" >"$HERE/$OUT-before.txt"
