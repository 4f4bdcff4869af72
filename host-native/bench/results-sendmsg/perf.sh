#!/usr/bin/env bash
# Server CPU in the paced fan-out by `perf stat -e task-clock` (precise, where wsload's
# figure counts 10 ms ticks): each server on CPU 0, wsload on CPU 1 publishing 300 frames
# at 50/s to 1000 subscribers; task-clock over 4 s in the middle. Three rounds of Bun
# pub/sub, the native host before and after. Same PROJECT, BEFORE, WSLOAD as run.sh.
# Usage: PROJECT=... BEFORE=... WSLOAD=... bash perf.sh > perf.txt (run twice for perf.txt:
# six rounds). Columns: server, task-clock ms in the 4 s (200 000 deliveries).
set -euo pipefail
NATCFG=$PROJECT/host-native/bench/wsload.toml
paced() { # $1 = name, $2 = port, then the server's command line
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local spid=$!
  sleep 2
  local sub='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
  local pub='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
  taskset -c 1 "$WSLOAD/target/release/wsload" fanout --url "ws://127.0.0.1:$port/" --subs 1000 --msgs 300 \
    --rate 50 --greeting --sub "$sub" --pub "$pub" --pid "$spid" --max-secs 60 >/dev/null 2>&1 &
  local load=$!
  sleep 2.5
  local ms
  ms=$(perf stat -x, -e task-clock -p "$spid" -- sleep 4 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1}')
  wait "$load"
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  echo "$name $ms"
}
cd "$WSLOAD"
for round in 1 2 3; do
  paced bun 18160 node_modules/.bin/bun run peers/bun-server.ts --port 18160
  paced before 18161 "$BEFORE/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18161 --memory
  paced after 18162 "$PROJECT/target/release/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18162 --memory
done
