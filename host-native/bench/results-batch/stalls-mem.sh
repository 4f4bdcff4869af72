#!/usr/bin/env bash
# Whether the stall at the end of some overloaded bursts (stalls.txt) is TCP memory
# pressure: this checkout's build only, the same 3 M-delivery burst as stalls.sh, with the
# highest "TCP: mem" of /proc/net/sockstat (pages, sampled every 0.1 s for 4 s) and the
# kernel's counters of pressure, pruning, drops, zero windows and probes per run (nstat).
# Compare the pages with /proc/sys/net/ipv4/tcp_mem (here 287907 383877 575814).
# Usage: PROJECT=... WSLOAD=... bash stalls-mem.sh [runs] > stalls-mem.txt
set -uo pipefail
NATCFG=$PROJECT/host-native/bench/wsload.toml
cd "$WSLOAD"
for r in $(seq 1 "${1:-10}"); do
  taskset -c 0 "$PROJECT/target/release/switchboard" serve --config "$NATCFG" --listen 127.0.0.1:18171 --memory >/dev/null 2>&1 &
  spid=$!
  sleep 2
  nstat -n >/dev/null
  sub='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
  pub='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
  max=$(mktemp)
  (for i in $(seq 1 40); do sleep 0.1; awk '/^TCP:/ {print $NF}' /proc/net/sockstat; done | sort -n | tail -1 >"$max") &
  mon=$!
  taskset -c 1 target/release/wsload fanout --url "ws://127.0.0.1:18171/" --subs 1000 --msgs 3000 \
    --rate 1000000 --greeting --sub "$sub" --pub "$pub" --pid "$spid" --max-secs 60 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); u=r["usage"]; print("%.2f M/s server %.2f wsload %.2f span %.2f" % (r["deliveries_per_sec"]/1e6, u["server_cpu_util"], u["client_cpu_util"], r["delivery_span_secs"]), end="")'
  wait "$mon"
  kill "$spid"; wait "$spid" 2>/dev/null
  echo -n " maxTCPmem(pages) $(cat "$max")"
  rm -f "$max"
  nstat 2>/dev/null | awk '/Pressure|Prune|Collapse|Drop|ZeroWindowAdv|WinProbe|TcpRetransSegs|RcvQ|OFO|TCPWqueueTooBig|TCPRcvCoalesce/ {printf " %s=%s", $1, $2} END {print ""}'
done
