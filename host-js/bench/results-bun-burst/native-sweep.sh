# Native bursts against one server (native-sweep.txt). BIN = a release build of PROJECT,
# TURN_FRAMES as stated there. Usage: PROJECT=... WSLOAD=... bash native-sweep.sh BIN PORT N
P=$PROJECT
taskset -c 0 $1 serve --config $P/host-native/bench/wsload.toml --listen 127.0.0.1:$2 --memory > /dev/null 2>&1 &
SPID=$!; sleep 1.5
SUB='{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}'
PUB='{"type":"publish","channel":"bench","message":{"room":"a","seq":{{seq}},"ts":{{ts}}}}'
for i in $(seq $3); do taskset -c 1 $WSLOAD/target/release/wsload fanout --url ws://127.0.0.1:$2/ --subs 1000 --msgs 200 --rate 1000000 --greeting --sub "$SUB" --pub "$PUB" --pid $SPID --max-secs 60 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(int(r['deliveries_per_sec']), r['usage']['server_cpu_util'], r['usage']['client_cpu_util'], int(r['latency_us']['p50']))"; done
kill $SPID; wait
