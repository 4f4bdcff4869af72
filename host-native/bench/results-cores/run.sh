#!/usr/bin/env bash
# Native host: 1 core vs 2 cores (write threads), issue 18. Run from anywhere.
# Needs PROJECT (this checkout) and WSLOAD (a built copy of shared/tools/wsload whose
# bench/run.sh starts an unknown peer NAME from $PEER_CMD_NAME, see BENCHMARKS.md).
set -euo pipefail
NEW=/tmp/switchboard-w; OLD=/tmp/switchboard-main
A="serve --listen 127.0.0.1:{PORT} --memory --config"
export PEER_CMD_sbmain="$OLD $A ${PROJECT:?PROJECT: this checkout}/host-native/bench/wsload.toml"
export PEER_CMD_sb1="$NEW $A /tmp/wsload-w0.toml"
export PEER_CMD_sb2w0="taskset -c 0,1 $NEW $A /tmp/wsload-w0.toml"
export PEER_CMD_sb2="taskset -c 0,1 $NEW $A /tmp/wsload-w1.toml"
cd "${WSLOAD:?WSLOAD: a writable, built copy of shared/tools/wsload}"
REPS=2 QUIET_MAX_S=60 RETRIES=2 BENCHES="${BENCHES:-fanout_burst fanout_paced rtt}" \
  PEERS="${PEERS:-sbmain sb1 sb2w0 sb2 bun}" bash bench/run.sh "results/${OUT:-native-cores}"
