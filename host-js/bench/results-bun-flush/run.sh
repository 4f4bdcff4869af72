#!/usr/bin/env bash
set -euo pipefail
# Needs PROJECT (this checkout) and WSLOAD (a built copy of shared/tools/wsload whose
# bench/run.sh starts an unknown peer NAME from $PEER_CMD_NAME, see BENCHMARKS.md).
P="${PROJECT:?PROJECT: this checkout}"
CFG=$P/host-js/bench/wsload-deployment.json
BUNX=$P/host-js/node_modules/.bin/bun
for n in 0 1000 4000 16000; do
  export PEER_CMD_sbbun$n="env SWITCHBOARD_BUN_FLUSH_FRAMES=$n SWITCHBOARD_CONFIG=$CFG PORT={PORT} $BUNX $P/host-js/examples/bun/server.mjs"
done
cd "${WSLOAD:?WSLOAD: a writable, built copy of shared/tools/wsload}"
REPS=${REPS:-3} QUIET_MAX_S=60 RETRIES=2 BENCHES="${BENCHES:-fanout_burst}" \
  PEERS="${PEERS:-sbbun0 sbbun1000 sbbun4000 sbbun16000 bun}" bash bench/run.sh "results/${OUT:-bunflush}"
