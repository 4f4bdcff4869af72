#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the native host
# queues a turn's frames to the same recipients back to back as one buffer per recipient
# (host-native/src/actor/batch.rs).
#   PROJECT = this checkout after `cargo build --release -p switchboard`
#   BEFORE  = a folder with switchboard built from main 41f19c0
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... WSLOAD=... bash run.sh
# Then: python3 ../results-sendmsg/cpu.py native.jsonl > cpu.txt; burst.sh three times
# (OUT=burst-ab1, burst-ab2, burst-ab3) and stalls.sh > stalls.txt, with the same
# variables.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnativebefore="$BEFORE/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
rm -rf results/batch
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="idle fanout_burst fanout_paced rtt" PEERS="sbnativebefore sbnative bun" \
  bash bench/run.sh results/batch
cp results/batch/raw.jsonl "$HERE/native.jsonl"
cp results/batch/env.txt "$HERE/env.txt"
python3 bench/summarize.py results/batch/raw.jsonl >"$HERE/native-summary.md"
