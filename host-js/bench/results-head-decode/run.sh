#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the engine reading a
# frame's typed request straight from its bytes (engine/src/protocol/head.rs).
# PROJECT = this checkout; BEFORE = the previous main (dfff5e9): its host-js/{js,pkg,examples}
# (built with `bash host-js/build.sh`) and its release `switchboard` binary;
# WSLOAD = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
# peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22).
set -euo pipefail
# host-bench-5s.txt: the Host's CPU per input in process (no sockets), interleaved, 5 s per
# workload (host-bench-1s.txt: the same with BENCH_SECONDS=1, Bun and Node only; those
# figures include the runtime's optimizing compile of the wasm, see BENCHMARKS.md)
B=$PROJECT/host-js/node_modules/.bin
for r in 1 2; do for d in $BEFORE/host-js $PROJECT/host-js; do
  BENCH_SECONDS=5 taskset -c 0 $B/bun $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=5 taskset -c 0 node $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=5 taskset -c 0 $B/deno run --allow-read --allow-env $PROJECT/host-js/bench/host-bench.mjs $d
done; done
# host-bench-batch-writer.txt: BEFORE2 = the commit that read requests from the frame
# (ec20aeb, built with `bash host-js/build.sh`), PROJECT = with the kept batch buffers
for r in 1 2 3; do for d in $BEFORE2/host-js $PROJECT/host-js; do
  BENCH_SECONDS=5 taskset -c 0 $B/bun $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=5 taskset -c 0 node $PROJECT/host-js/bench/host-bench.mjs $d
done; done
CFG=$PROJECT/host-js/bench/wsload-deployment.json BIN=$PROJECT/host-js/node_modules/.bin
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BIN/bun $PROJECT/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BIN/bun $BEFORE/host-js/examples/bun/server.mjs"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnatbefore="$BEFORE/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
# side-by-side.jsonl, side-by-side-summary.md
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst" \
  PEERS="sbnatbefore sbnative sbbunbefore sbbun bun" bash bench/run.sh results/head-decode
python3 bench/summarize.py results/head-decode/raw.jsonl
# side-by-side-node-deno.jsonl, side-by-side-node-deno-summary.md (round trips only)
export PEER_CMD_sbnode="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} node $PROJECT/host-js/examples/node/server.mjs"
export PEER_CMD_sbnodebefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} node $BEFORE/host-js/examples/node/server.mjs"
DENO="$BIN/deno run --allow-net=127.0.0.1 --allow-read --allow-env"
export PEER_CMD_sbdeno="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $DENO $PROJECT/host-js/examples/deno/server.mjs"
export PEER_CMD_sbdenobefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $DENO $BEFORE/host-js/examples/deno/server.mjs"
export PEER_CMD_deno="$BIN/deno run --allow-net=127.0.0.1 --allow-env $PROJECT/host-js/bench/peers/deno-server.mjs --port {PORT}"
REPS=2 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
  PEERS="sbnodebefore sbnode node sbdenobefore sbdeno deno" bash bench/run.sh results/head-decode-nd
python3 bench/summarize.py results/head-decode-nd/raw.jsonl
# final-rtt.jsonl, final-rtt-summary.md: after the last commit (PROJECT rebuilt: release
# switchboard and `bash host-js/build.sh`), round trips only
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
  PEERS="sbnatbefore sbnative sbbunbefore sbbun bun" bash bench/run.sh results/final
python3 bench/summarize.py results/final/raw.jsonl
