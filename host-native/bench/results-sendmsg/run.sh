#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the native host
# writes plain TCP with sendmsg instead of writev (transport/stream.rs Tcp), keeps an idle
# connection's queue of 4 frames instead of freeing it after every write (outbound.rs
# KEEP_FRAMES), and the engine skips the per-recipient tenant check of a resource
# publication while no connection has a tenant (engine/src/machine/streams.rs).
#   PROJECT = this checkout after `cargo build --release -p switchboard`
#   BEFORE  = a folder with switchboard built from main 646ac3f (the native code of d68db07
#             but for when one metric counts)
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... WSLOAD=... bash run.sh
# step1/ (and perf-step1.txt from perf.sh): the same with a first version of the change
# whose vectored write waited for tokio's readiness before each sendmsg; the files here:
# the committed version, which tries the sendmsg first.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnativebefore="$BEFORE/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="idle fanout_burst fanout_paced" PEERS="sbnativebefore sbnative bun" \
  bash bench/run.sh results/sendmsg
cp results/sendmsg/raw.jsonl "$HERE/native.jsonl"
cp results/sendmsg/env.txt "$HERE/env.txt"
python3 bench/summarize.py results/sendmsg/raw.jsonl >"$HERE/native-summary.md"
