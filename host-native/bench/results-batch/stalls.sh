#!/usr/bin/env bash
# The 3 M-delivery burst of burst.sh (1000 subscribers, 3000 publications at full speed,
# server on CPU 0, wsload on CPU 1) repeated without perf, alternating the build before
# (BEFORE), this checkout's and Bun's peer, with the kernel's TCP counters around each
# run (nstat): deliveries/s, the server's and wsload's share of their cores, and the zero
# windows and window probes of the run. Same PROJECT, BEFORE and WSLOAD as run.sh.
# Usage: PROJECT=... BEFORE=... WSLOAD=... bash stalls.sh [rounds] > stalls.txt
set -euo pipefail
ROUNDS=${1:-10}
NATCFG=$PROJECT/host-native/bench/wsload.toml
cd "$WSLOAD"
one() {
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local spid=$!
  sleep 2
  nstat -n >/dev/null
  local sub='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
  local pub='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
  taskset -c 1 target/release/wsload fanout --url "ws://127.0.0.1:$port/" --subs 1000 --msgs 3000 \
    --rate 1000000 --greeting --sub "$sub" --pub "$pub" --pid "$spid" --max-secs 60 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); u=r["usage"]; print("%-7s %.2f M/s  server %.2f  wsload %.2f  span %.2f s  losses %d" % (sys.argv[1], r["deliveries_per_sec"]/1e6, u["server_cpu_util"], u["client_cpu_util"], r["delivery_span_secs"], r["losses"]), end="")' "$name"
  kill "$spid"; wait "$spid" 2>/dev/null || true
  nstat 2>/dev/null | awk '/TCPToZeroWindowAdv|TCPWinProbe|TcpRetransSegs/ {printf "  %s %s", $1, $2} END {print ""}'
}
for r in $(seq 1 "$ROUNDS"); do
  one before 18170 "$BEFORE/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18170 --memory
  one after 18171 "$PROJECT/target/release/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18171 --memory
  if [ $((r % 3)) -eq 1 ]; then
    one bun 18172 node_modules/.bin/bun run peers/bun-server.ts --port 18172
  fi
done
