#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): serveBun warms the
# socket path up with real loopback sockets before listening (js/bun.js warmUpSockets).
#   PROJECT = this checkout after `bash host-js/build.sh`
#   BEFORE  = a folder with host-js/{js,pkg,pkg-lean,examples} copied from PROJECT, with
#             js/bun.js and js/core.js of main d68db07 (the same wasm module)
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... WSLOAD=... OUT=run2 bash run.sh
# run1/: the first version of warmUpSockets (all 1 000 clients opened at once, the same
# traffic); run2/: this commit's (clients opened in waves of 100).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B=$PROJECT/host-js/node_modules/.bin
CFG=$PROJECT/host-js/bench/wsload-deployment.json
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $BEFORE/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $PROJECT/host-js/examples/bun/server.mjs"
OUT=${OUT:-run2}
mkdir -p "$HERE/$OUT"
cd "$WSLOAD"
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="fanout_burst rtt" PEERS="sbbunbefore sbbun bun" \
  bash bench/run.sh "results/warm-$OUT"
cp "results/warm-$OUT/raw.jsonl" "$HERE/$OUT/bun.jsonl"
cp "results/warm-$OUT/env.txt" "$HERE/$OUT/env.txt"
python3 bench/summarize.py "results/warm-$OUT/raw.jsonl" >"$HERE/$OUT/bun-summary.md"
