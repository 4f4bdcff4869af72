#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): batch texts read from
# wasm memory with Buffer#toString instead of TextDecoder.decode(subarray) (js/batch.js
# memoryText), client frames timed one in 16 for switchboard_engine_handle_seconds, and the
# engine's Action without the inline 344-byte cluster message (Action::Cluster boxes it).
#   PROJECT = this checkout after `bash host-js/build.sh` and `cargo build --release -p switchboard`
#   BEFORE  = a worktree of main 4fad0ac (git worktree add --detach) with the same two builds
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
#   STEP    = 1 or 2. Two states of PROJECT's host-js/js were measured, with the same wasm
#             module and native binary: step 1 = texts read with Buffer#toString, every frame
#             timed (not a commit: the final js/ with core.js's Host.message timing every
#             frame, as in BEFORE); step 2 = the final js/. STEP1 = a copy of host-js/{js,pkg}
#             in the step-1 state (for host-bench-timing.txt).
# Usage: PROJECT=... BEFORE=... WSLOAD=... STEP=1 bash run.sh, then the same with STEP=2.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B=$PROJECT/host-js/node_modules/.bin
# The Host's CPU per input in process (no sockets), interleaved, 3 s rounds, 2 rounds;
# the checkouts' paths are written BEFORE/, STEP1/ and PROJECT/ in the files.
host_bench() { # $1 = output file, $2 $3 = the host-js folders to compare
  for r in 1 2; do for d in "$2" "$3"; do
    BENCH_SECONDS=3 taskset -c 0 $B/bun $PROJECT/host-js/bench/host-bench.mjs $d
    BENCH_SECONDS=3 taskset -c 0 node $PROJECT/host-js/bench/host-bench.mjs $d
    BENCH_SECONDS=3 taskset -c 0 $B/deno run --allow-read --allow-env $PROJECT/host-js/bench/host-bench.mjs $d
  done; done 2>&1 | sed "s#$BEFORE/#BEFORE/#g; s#${STEP1:-/nonexistent}#STEP1/host-js#g; s#$PROJECT/#PROJECT/#g" >"$HERE/$1"
}
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
keep() { # $1 = wsload results folder, $2 = name here: raw lines and their summary
  cp "$WSLOAD/results/$1/raw.jsonl" "$HERE/$2.jsonl"
  (cd "$WSLOAD" && python3 bench/summarize.py "results/$1/raw.jsonl") >"$HERE/$2-summary.md"
}
cd "$WSLOAD"
if [ "$STEP" = 1 ]; then
  host_bench host-bench.txt "$BEFORE/host-js" "$PROJECT/host-js"
  REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst" PEERS="sbbunbefore sbbun bun" \
    bash bench/run.sh results/text1 && keep text1 bun
  cp results/text1/env.txt "$HERE/env.txt"
  # the native host before/after (the engine change only)
  REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst" PEERS="sbnativebefore sbnative bun" \
    bash bench/run.sh results/text2 && keep text2 native
  REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
    PEERS="sbnodebefore sbnode node sbdenobefore sbdeno deno30" bash bench/run.sh results/text3 && keep text3 node-deno
  # a second run of the round trips, Bun and Deno
  REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
    PEERS="sbbunbefore sbbun bun sbdenobefore sbdeno deno30" bash bench/run.sh results/text4 && keep text4 rtt2
else
  host_bench host-bench-sampled.txt "$BEFORE/host-js" "$PROJECT/host-js"
  REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" \
    PEERS="sbbunbefore sbbun bun sbnode node sbdeno deno30" bash bench/run.sh results/text5 && keep text5 final-rtt
  # frames timed every time (STEP1) against one in 16 (PROJECT), the same wasm; ping lines only
  host_bench host-bench-timing.txt "$STEP1" "$PROJECT/host-js"
  grep '"ping"' "$HERE/host-bench-timing.txt" >"$HERE/host-bench-timing.tmp" && mv "$HERE/host-bench-timing.tmp" "$HERE/host-bench-timing.txt"
  # one frame's text read from wasm memory, each runtime
  cd "$PROJECT"
  { echo "== bun"; taskset -c 0 $B/bun host-js/bench/text-read-bench.mjs
    echo "== node"; taskset -c 0 node host-js/bench/text-read-bench.mjs
    echo "== deno"; taskset -c 0 $B/deno run host-js/bench/text-read-bench.mjs; } >"$HERE/text-read-bench.txt"
fi
