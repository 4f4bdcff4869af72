# A fresh Bun server per burst, as bench/run.sh runs them (warmup.txt). Usage:
# PROJECT=... WSLOAD=... bash fresh.sh PORT N
P=$PROJECT; B=$P/host-js/node_modules/.bin
SUB='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
PUB='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
for i in $(seq $2); do
SWITCHBOARD_CONFIG=$P/host-js/bench/wsload-deployment.json PORT=$1 taskset -c 0 $B/bun $P/host-js/examples/bun/server.mjs > /dev/null 2>&1 &
SPID=$!; sleep 2
taskset -c 1 $WSLOAD/target/release/wsload fanout --url ws://127.0.0.1:$1/ --subs 1000 --msgs 200 --rate 1000000 --greeting --sub "$SUB" --pub "$PUB" --pid $SPID --max-secs 60 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(int(r['deliveries_per_sec']), r['usage']['server_cpu_util'], r['usage']['client_cpu_util'], int(r['latency_us']['p50']))"
kill $SPID; wait
done
