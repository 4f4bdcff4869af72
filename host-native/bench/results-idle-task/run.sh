#!/usr/bin/env bash
# Native host idle memory: before/after the compact actor send (issue 18).
# Needs PROJECT (this checkout) and WSLOAD (a built copy of shared/tools/wsload whose
# bench/run.sh starts an unknown peer NAME from $PEER_CMD_NAME, see BENCHMARKS.md).
set -euo pipefail
A="serve --listen 127.0.0.1:{PORT} --memory --config ${PROJECT:?PROJECT: this checkout}/host-native/bench/wsload.toml"
export PEER_CMD_sbbefore="/tmp/switchboard-w $A"
export PEER_CMD_sbafter="${AFTER:-/tmp/switchboard-s1} $A"
cd "${WSLOAD:?WSLOAD: a writable, built copy of shared/tools/wsload}"
REPS=${REPS:-2} QUIET_MAX_S=60 RETRIES=2 BENCHES="${BENCHES:-idle}" \
  PEERS="${PEERS:-sbbefore sbafter bun}" bash bench/run.sh "results/${OUT:-mem}"
