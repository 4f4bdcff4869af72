#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the native host's
# plain TCP writes go to the socket without tokio's readiness check first (a would-block
# falls back to it), and a single buffer is written with send instead of sendmsg
# (transport/stream.rs Tcp); the first frame waiting is kept in the connection's state,
# the queue holds only the frames behind it (outbound/queue.rs); the actor's connection
# map hashes with FxHash.
#   PROJECT = this checkout after `cargo build --release -p switchboard`
#   BEFORE  = a folder with switchboard built from main dcd933b
#   MID     = a folder with switchboard built with the write change only (stream.rs, and
#             write_queue's single-frame write without the 64-slice vector)
#   WSLOAD  = a writable copy of shared/tools/wsload whose bench/run.sh starts an unknown
#             peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22)
# Usage: PROJECT=... BEFORE=... MID=... WSLOAD=... bash run.sh
# Then: python3 ../results-sendmsg/cpu.py native.jsonl > cpu.txt (CPU per delivery summed
# over the repetitions); `perf stat` task-clock: BEFORE=... bash ../results-sendmsg/perf.sh,
# twice, > perf.txt; where the CPU goes: ../results-paced-perf/run.sh with its output
# moved here as compare.txt (compare-before.txt: the same with the BEFORE binary).
# mid/: the same files from a first run made while the checkout held the MID change only
# (so its "sbnative" is MID; peers sbnativebefore, sbnative and bun, and rtt too).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NATCFG=$PROJECT/host-native/bench/wsload.toml
export PEER_CMD_sbnativebefore="$BEFORE/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnativemid="$MID/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$PROJECT/target/release/switchboard serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
cd "$WSLOAD"
rm -rf results/rawsend
REPS=5 QUIET_MAX_S=60 RETRIES=2 BENCHES="idle fanout_burst fanout_paced rtt" PEERS="sbnativebefore sbnativemid sbnative bun" \
  bash bench/run.sh results/rawsend
cp results/rawsend/raw.jsonl "$HERE/native.jsonl"
cp results/rawsend/env.txt "$HERE/env.txt"
python3 bench/summarize.py results/rawsend/raw.jsonl >"$HERE/native-summary.md"
