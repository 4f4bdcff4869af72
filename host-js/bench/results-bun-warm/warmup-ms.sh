#!/usr/bin/env bash
# How long serveBun's two warm-ups take: warmUp() (the engine, stand-in sockets) then
# warmUpSockets() (real loopback sockets), each in a fresh Bun process, 5 times.
# Usage: bash warmup-ms.sh > warmup-ms.txt (after bash host-js/build.sh)
set -euo pipefail
JS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../js" && pwd)"
BUN="$JS/../node_modules/.bin/bun"
echo "# warmUp() ms, warmUpSockets() ms, deliveries, error"
for _ in 1 2 3 4 5; do
  "$BUN" -e "
    import { initFromFile, warmUpSockets } from '$JS/bun.js';
    import { warmUpOnce } from '$JS/core.js';
    initFromFile();
    const a = await warmUpOnce();
    const r = await warmUpSockets();
    console.log(Math.round(a), Math.round(r.ms), r.deliveries, r.error ?? '');"
done
