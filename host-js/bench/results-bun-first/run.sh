#!/usr/bin/env bash
# How the files in this folder were made (2026-12-08, quiet machine): a Bun turn's first
# early write at 512 frames, then every FLUSH_AT as before (first-flush.patch; tried and
# not kept: BENCHMARKS.md, "Issue 22: a turn's first frames written early (tried, not
# kept)").
#   PROJECT = main 8e641a4 after `bash host-js/build.sh`, with first-flush.patch applied
#   BEFORE  = a folder with host-js/{js,pkg,pkg-lean,examples} copied from PROJECT, with
#             js/bun.js of main 8e641a4 (the same wasm module)
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... WSLOAD=... OUT=run1 bash run.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B=$PROJECT/host-js/node_modules/.bin
CFG=$PROJECT/host-js/bench/wsload-deployment.json
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $BEFORE/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $PROJECT/host-js/examples/bun/server.mjs"
OUT=${OUT:-run1}
mkdir -p "$HERE/$OUT"
cd "$WSLOAD"
REPS=${REPS:-5} QUIET_MAX_S=60 RETRIES=2 BENCHES="${BENCHES:-fanout_burst fanout_paced rtt}" PEERS="sbbunbefore sbbun bun" \
  bash bench/run.sh "results/first-$OUT"
cp "results/first-$OUT/raw.jsonl" "$HERE/$OUT/bun.jsonl"
cp "results/first-$OUT/env.txt" "$HERE/$OUT/env.txt"
python3 bench/summarize.py "results/first-$OUT/raw.jsonl" >"$HERE/$OUT/bun-summary.md"
