#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): client frames' batches
# read from wasm memory (engine.frameView, host-js/src/batch.rs) instead of returned as a
# string. PROJECT = this checkout (`bash host-js/build.sh` run); BEFORE = a copy of main
# 7db25e0's host-js/{js,pkg,pkg-lean,examples} after its `bash host-js/build.sh`;
# WSLOAD = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown peer
# NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22).
set -euo pipefail
B=$PROJECT/host-js/node_modules/.bin
# host-bench-5s.txt: the Host's CPU per input in process (no sockets), interleaved, 5 s rounds
for r in 1 2; do for d in $BEFORE/host-js $PROJECT/host-js; do
  BENCH_SECONDS=5 taskset -c 0 $B/bun $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=5 taskset -c 0 node $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=5 taskset -c 0 $B/deno run --allow-read --allow-env $PROJECT/host-js/bench/host-bench.mjs $d
done; done
CFG=$PROJECT/host-js/bench/wsload-deployment.json
DENO="$B/deno run --allow-net=127.0.0.1 --allow-read --allow-env"
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $BEFORE/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $PROJECT/host-js/examples/bun/server.mjs"
export PEER_CMD_sbnodebefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} node $BEFORE/host-js/examples/node/server.mjs"
export PEER_CMD_sbnode="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} node $PROJECT/host-js/examples/node/server.mjs"
export PEER_CMD_sbdenobefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $DENO $BEFORE/host-js/examples/deno/server.mjs"
export PEER_CMD_sbdeno="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $DENO $PROJECT/host-js/examples/deno/server.mjs"
# the plain Deno server without pings (as before) and with Deno's pings every 30 s, as
# Switchboard-on-Deno has them with the bench deployment's heartbeatInterval of 30 s
export PEER_CMD_deno="$B/deno run --allow-net=127.0.0.1 --allow-env $PROJECT/host-js/bench/peers/deno-server.mjs --port {PORT}"
export PEER_CMD_deno30="$B/deno run --allow-net=127.0.0.1 --allow-env $PROJECT/host-js/bench/peers/deno-server.mjs --port {PORT} --idle-timeout 30"
cd "$WSLOAD"
# bun.jsonl, bun-summary.md
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst" PEERS="sbbunbefore sbbun bun" \
  bash bench/run.sh results/view1
# node-deno.jsonl, node-deno-summary.md
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
  PEERS="sbnodebefore sbnode node sbdenobefore sbdeno deno30 deno" bash bench/run.sh results/view2
for r in view1 view2; do python3 bench/summarize.py results/$r/raw.jsonl; done
# final-rtt.jsonl, deno-fanout.jsonl (+ -summary.md): the final builds in one run; AFTER =
# the release `switchboard` of this change (host-native/bench/results-one-thread/run.sh)
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnative="$AFTER serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" PEERS="sbnative sbbun bun" bash bench/run.sh results/final2
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="fanout_burst" PEERS="sbdeno deno30 deno" bash bench/run.sh results/final3
for r in final2 final3; do python3 bench/summarize.py results/$r/raw.jsonl; done
# crossing-bench.txt: the wasm boundary in process, after this change (3 rounds each)
cd "$PROJECT"
taskset -c 0 $B/bun host-js/bench/crossing-bench.mjs
taskset -c 0 node host-js/bench/crossing-bench.mjs
taskset -c 0 $B/deno run --allow-read host-js/bench/crossing-bench.mjs
