#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): batch texts read from
# wasm memory with Buffer#toString instead of TextDecoder.decode(subarray) (js/batch.js
# memoryText), and the engine's Action without the inline 344-byte cluster message
# (Action::Cluster boxes it). PROJECT = this checkout after `bash host-js/build.sh` and
# `cargo build --release -p switchboard`; BEFORE = a worktree of main 4fad0ac with the same
# two builds; WSLOAD = a writable copy of shared/tools/wsload whose bench/run.sh starts an
# unknown peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22).
# Two states of js/ were measured: STEP 1 (texts read with Buffer#toString, every frame
# timed) for host-bench.txt and the runs text1-text4; STEP 2, the final js/ (client frames
# also timed one in 16 for switchboard_engine_handle_seconds), for host-bench-sampled.txt
# and text5. The wasm module and the native binary are the same in both.
set -euo pipefail
B=$PROJECT/host-js/node_modules/.bin
# host-bench.txt (STEP 1) and host-bench-sampled.txt (STEP 2, the same loop again): the
# Host's CPU per input in process (no sockets), interleaved, 3 s rounds; the checkouts'
# paths are written BEFORE/ and PROJECT/ in the files
for r in 1 2; do for d in $BEFORE/host-js $PROJECT/host-js; do
  BENCH_SECONDS=3 taskset -c 0 $B/bun $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=3 taskset -c 0 node $PROJECT/host-js/bench/host-bench.mjs $d
  BENCH_SECONDS=3 taskset -c 0 $B/deno run --allow-read --allow-env $PROJECT/host-js/bench/host-bench.mjs $d
done; done 2>&1 | tee host-bench.txt
CFG=$PROJECT/host-js/bench/wsload-deployment.json
NATCFG=$PROJECT/host-native/bench/wsload.toml
DENO="$B/deno run --allow-net=127.0.0.1 --allow-read --allow-env"
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $BEFORE/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $PROJECT/host-js/examples/bun/server.mjs"
export PEER_CMD_sbnodebefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} node $BEFORE/host-js/examples/node/server.mjs"
export PEER_CMD_sbnode="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} node $PROJECT/host-js/examples/node/server.mjs"
export PEER_CMD_sbdenobefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $DENO $BEFORE/host-js/examples/deno/server.mjs"
export PEER_CMD_sbdeno="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $DENO $PROJECT/host-js/examples/deno/server.mjs"
export PEER_CMD_deno30="$B/deno run --allow-net=127.0.0.1 --allow-env $PROJECT/host-js/bench/peers/deno-server.mjs --port {PORT} --idle-timeout 30"
export PEER_CMD_sbnativebefore="$BEFORE/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
# bun.jsonl (+ bun-summary.md): Bun host before/after against Bun pub/sub
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst" PEERS="sbbunbefore sbbun bun" \
  bash bench/run.sh results/text1
# native.jsonl (+ native-summary.md): the native host before/after (the engine change only)
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst" PEERS="sbnativebefore sbnative bun" \
  bash bench/run.sh results/text2
# node-deno.jsonl (+ node-deno-summary.md): Node and Deno before/after against their plain servers
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
  PEERS="sbnodebefore sbnode node sbdenobefore sbdeno deno30" bash bench/run.sh results/text3
for r in text1 text2 text3; do python3 bench/summarize.py results/$r/raw.jsonl; done
# rtt2.jsonl (+ rtt2-summary.md): a second run of the round trips (STEP 1), Bun and Deno, 5 repetitions
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
  PEERS="sbbunbefore sbbun bun sbdenobefore sbdeno deno30" bash bench/run.sh results/text4
python3 bench/summarize.py results/text4/raw.jsonl
# STEP 2. final-rtt.jsonl (+ final-rtt-summary.md): the final js/, 5 repetitions
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
  PEERS="sbbunbefore sbbun bun sbnode node sbdeno deno30" bash bench/run.sh results/text5
python3 bench/summarize.py results/text5/raw.jsonl
