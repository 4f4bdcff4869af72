#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the native host keeps
# a plain TCP connection's stream in the connection's state instead of boxed
# (transport/stream.rs Stream). The build measured also grew a queue past its small size
# 4x at a time (outbound/queue.rs Frames::push_back); that was taken out after this run,
# because the burst's malloc share did not change (burst-compare.txt against
# ../results-rawsend/burst-compare.txt, a build before the FxHash map), and the paced,
# idle and round-trip runs never reach it.
#   PROJECT = this checkout after `cargo build --release -p switchboard`
#   BEFORE  = a folder with switchboard built from main 5a4affc
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... WSLOAD=... bash run.sh
# Then: python3 ../results-sendmsg/cpu.py native.jsonl > cpu.txt; PROJECT=... BEFORE=...
# WSLOAD=... bash ../results-sendmsg/perf.sh >> perf.txt, twice; PROJECT=... WSLOAD=... bash
# ../results-rawsend/burst.sh, its output (results-rawsend/burst-compare.txt) moved here as
# burst-compare.txt (this build's burst profile) and the committed one there restored.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnativebefore="$BEFORE/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
rm -rf results/inline
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="idle fanout_burst fanout_paced rtt" PEERS="sbnativebefore sbnative bun" \
  bash bench/run.sh results/inline
cp results/inline/raw.jsonl "$HERE/native.jsonl"
cp results/inline/env.txt "$HERE/env.txt"
python3 bench/summarize.py results/inline/raw.jsonl >"$HERE/native-summary.md"
