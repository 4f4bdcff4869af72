#!/usr/bin/env bash
# How the files in this folder were made (2026-12-07, quiet machine): the native host on
# tokio's single-threaded scheduler when it gets one runtime thread (issue 18).
# PROJECT = this checkout; WSLOAD = a writable copy of shared/tools/wsload whose
# bench/run.sh starts an unknown peer NAME from $PEER_CMD_NAME (see BENCHMARKS.md, issue 22).
# EXP = the release `switchboard` of main 08e1188 with one experimental line in cli.rs:
# the runtime was `new_current_thread()` when SB_EXP_CT was set, `new_multi_thread()`
# otherwise (the server is pinned to one CPU, so the multi-threaded runtime had one worker).
# AFTER = the release `switchboard` of this change (one CPU available: single-threaded).
set -euo pipefail
NATCFG=$PROJECT/host-native/bench/wsload.toml
cd "$WSLOAD"
# experiment-rtt.jsonl and experiment-all.jsonl (+ -summary.md): mt = multi-threaded, ct = single-threaded
export PEER_CMD_mt="$EXP serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_ct="env SB_EXP_CT=1 $EXP serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt" PEERS="mt ct bun" bash bench/run.sh results/ct1
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst fanout_paced idle" PEERS="mt ct bun" \
  bash bench/run.sh results/ct2
# final.jsonl (+ final-summary.md): before = EXP without SB_EXP_CT (main 08e1188), after = AFTER
export PEER_CMD_sbnatbefore="$EXP serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
export PEER_CMD_sbnative="$AFTER serve --config $NATCFG --listen 127.0.0.1:{PORT} --memory"
REPS=3 QUIET_MAX_S=60 RETRIES=2 BENCHES="rtt fanout_burst fanout_paced" \
  PEERS="sbnatbefore sbnative bun" bash bench/run.sh results/ct3
for r in ct1 ct2 ct3; do python3 bench/summarize.py results/$r/raw.jsonl; done
