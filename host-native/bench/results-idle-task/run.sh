#!/usr/bin/env bash
# Native host idle memory: before/after the compact actor send (issue 18).
set -euo pipefail
A="serve --listen 127.0.0.1:{PORT} --memory --config /work/main/host-native/bench/wsload.toml"
export PEER_CMD_sbbefore="/tmp/switchboard-w $A"
export PEER_CMD_sbafter="${AFTER:-/tmp/switchboard-s1} $A"
cd /work/bench/wsload
REPS=${REPS:-2} QUIET_MAX_S=60 RETRIES=2 BENCHES="${BENCHES:-idle}" \
  PEERS="${PEERS:-sbbefore sbafter bun}" bash bench/run.sh "results/${OUT:-mem}"
