#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the Bun host writes a
# turn's queue out once it holds FLUSH_AT (32 768) frames instead of only at the turn's end,
# and reads getBufferedAmount() once per queued turn (js/bun.js); the native host's actor
# ends a turn once it has queued TURN_FRAMES (32 768) frames (host-native/src/actor).
#   PROJECT = this checkout after `bash host-js/build.sh` and `cargo build --release -p switchboard`
#   BEFORE  = a folder with host-js/{js,pkg,pkg-lean,examples} copied from PROJECT, with
#             js/bun.js and js/bun.d.ts of main 3a96bd2 (the same wasm module: only bun.js
#             changed), and target/release/switchboard built from main 3a96bd2
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... WSLOAD=... STEP=1 bash run.sh (done first), then STEP=2
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B=$PROJECT/host-js/node_modules/.bin
CFG=$PROJECT/host-js/bench/wsload-deployment.json
export PEER_CMD_sbbunbefore="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $BEFORE/host-js/examples/bun/server.mjs"
export PEER_CMD_sbbun="env SWITCHBOARD_CONFIG=$CFG PORT={PORT} $B/bun $PROJECT/host-js/examples/bun/server.mjs"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnativebefore="$BEFORE/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
keep() { # $1 = wsload results folder, $2 = name here: raw lines and their summary
  cp "$WSLOAD/results/$1/raw.jsonl" "$HERE/$2.jsonl"
  (cd "$WSLOAD" && python3 bench/summarize.py "results/$1/raw.jsonl") >"$HERE/$2-summary.md"
}
cd "$WSLOAD"
# step 1 (Bun host only; the native build was not made yet)
if [ "${STEP:-2}" = 1 ]; then
  REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="fanout_burst fanout_paced rtt" PEERS="sbbunbefore sbbun bun" \
    bash bench/run.sh results/burst1 && keep burst1 bun
  cp results/burst1/env.txt "$HERE/env.txt"
  exit 0
fi
# step 2: both hosts
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="fanout_burst fanout_paced rtt" \
  PEERS="sbbunbefore sbbun sbnativebefore sbnative bun" bash bench/run.sh results/burst2 && keep burst2 both
