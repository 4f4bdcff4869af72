#!/usr/bin/env bash
# Where the paced fan-out's server CPU goes, native host against Bun pub/sub (2026-12-07,
# quiet machine): `perf record` (4 kHz, 4 s, no call graphs) of each server on CPU 0 while
# wsload on CPU 1 publishes 300 frames at 50/s to 1000 subscribers; compare.py sums the
# samples by symbol. compare.txt is its output.
#   PROJECT = this checkout after `cargo build --release -p switchboard`
#   WSLOAD  = a writable copy of shared/tools/wsload, built, with bun in its node_modules
# Usage: PROJECT=... WSLOAD=... bash run.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
paced() { # $1 = name, $2 = port, then the server's command line
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local spid=$!
  sleep 2
  local sub='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
  local pub='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
  taskset -c 1 "$WSLOAD/target/release/wsload" fanout --url "ws://127.0.0.1:$port/" --subs 1000 --msgs 300 \
    --rate 50 --greeting --sub "$sub" --pub "$pub" --pid "$spid" --max-secs 60 >"$OUT/$name.json" 2>/dev/null &
  local load=$!
  sleep 2.5
  perf record -F 4000 -p "$spid" -o "$OUT/perf.$name" -- sleep 4 2>/dev/null
  wait "$load"
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  perf report -i "$OUT/perf.$name" --no-children --sort dso,sym -F overhead,sample,dso,sym 2>/dev/null >"$OUT/$name.txt"
}
cd "$WSLOAD"
paced bun 18150 node_modules/.bin/bun run peers/bun-server.ts --port 18150
paced native 18151 "$PROJECT/target/release/switchboard" serve --config "$PROJECT/host-native/bench/wsload.toml" \
  --listen 127.0.0.1:18151 --memory
python3 "$HERE/compare.py" "$OUT" >"$HERE/compare.txt"
