#!/usr/bin/env bash
# A fresh Bun server per burst (1000 subscribers, 200 publishes back to back), alternating
# "none" (NOSOCK=1; js/bun.js was patched for this experiment only, to skip warmUpSockets
# when NOSOCK is set: `process.env.NOSOCK ? {} : await warmUpSockets()`) and "sock" (the
# socket warm-up on). Server on CPU 0, wsload on CPU 1.
# Usage: PROJECT=<this checkout> WSLOAD=<wsload copy> bash fresh-ab.sh PORT PAIRS
# fresh-ab.txt: mode, deliveries/s, server CPU (cores), wsload CPU (cores), delivery p50 (us).
P=${PROJECT:?}; B=$P/host-js/node_modules/.bin
SUB='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
PUB='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
W=${WSLOAD:?}/target/release/wsload
for i in $(seq $2); do for mode in none sock; do
if [ $mode = none ]; then export NOSOCK=1; else unset NOSOCK; fi
SWITCHBOARD_CONFIG=$P/host-js/bench/wsload-deployment.json PORT=$1 taskset -c 0 $B/bun $P/host-js/examples/bun/server.mjs > /dev/null 2>&1 &
SPID=$!; sleep 3
echo -n "$mode "; taskset -c 1 $W fanout --url ws://127.0.0.1:$1/ --subs 1000 --msgs 200 --rate 1000000 --greeting --sub "$SUB" --pub "$PUB" --pid $SPID --max-secs 60 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(int(r['deliveries_per_sec']), r['usage']['server_cpu_util'], r['usage']['client_cpu_util'], int(r['latency_us']['p50']))"
kill $SPID; wait
done; done
