#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07 00:00-00:10 UTC, quiet machine).
# PROJECT = this checkout (after = ec6c1be), BEFORE = a worktree of b0ccc3d with
# `bash host-js/build.sh`-equivalent pkg/ (wasm-release + wasm-bindgen + wasm-opt -O2) and
# a release `switchboard`; WSLOAD = a writable copy of shared/tools/wsload whose
# bench/run.sh starts an unknown peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22).
set -euo pipefail
CFG=$PROJECT/host-js/bench/wsload-deployment.json BIN=$PROJECT/host-js/node_modules/.bin
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BIN/bun $PROJECT/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BIN/bun $BEFORE/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbunnw="env SWITCHBOARD_WARMUP=0 SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BIN/bun $PROJECT/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbunnwbefore="env SWITCHBOARD_WARMUP=0 SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BIN/bun $BEFORE/host-js/examples/bun/server.mjs"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnatbefore="$BEFORE/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
# native-idle-{19000,5000}.jsonl: IDLE_CONNS=$n REPS=2 BENCHES=idle PEERS="sbnative bun"
# idle-nowarmup-before-after.jsonl (peers named sbbunbefore/sbbunnw in the file: both without warm-up)
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES=idle PEERS="sbbunnwbefore sbbunnw bun" bash bench/run.sh results/idle-ba
# idle-default-{5000,10000,19000}.jsonl (the hosts' default: warm-up before listening)
for n in 10000 5000 19000; do
  IDLE_CONNS=$n REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES=idle PEERS="sbbunbefore sbbun bun" bash bench/run.sh results/idle-warm-$n
done
# side-by-side.jsonl, side-by-side-summary.md
REPS=2 QUIET_MAX_S=60 RETRIES=2 BENCHES="idle rtt fanout_burst" \
  PEERS="sbnatbefore sbnative sbbunbefore sbbun bun" bash bench/run.sh results/all-ba
python3 bench/summarize.py results/all-ba/raw.jsonl
# probe.txt: host-js/bench/bun-memory-probe.mjs on port 9301 (SWITCHBOARD_WARMUP=0 and 1,
# BEFORE and PROJECT), its figures read before and 8 s into
#   wsload idle --url ws://127.0.0.1:9301/ --conns 10000 --greeting \
#     --hello '{"type":"subscribe","requestId":"s{{seq}}","resource":"bench","filter":{"room":"a"}}' \
#     --ack subscribed --settle-ms 2000 --hold-secs 8
# (server on CPU 0, wsload on CPU 1)
