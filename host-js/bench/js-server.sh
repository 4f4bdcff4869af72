#!/usr/bin/env bash
# Stands in for `switchboard serve --config FILE` so the project's load tool
# (host-native's switchboard-bench) can drive the JS hosts:
#   JS_RUNTIME=bun target/release/switchboard-bench --server host-js/bench/js-server.sh \
#       --server-cpus 0 fanout --subscribers 1000 --rate 1000 --duration 10
# It takes the listen address from the tool's TOML and serves bench-deployment.json (the
# same engine settings as the tool's built-in config) with the node or bun example.
# `exec` keeps the pid, so the tool's RSS and CPU readings are the runtime's own.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ "${1:-}" = serve ] && [ "${2:-}" = --config ] || { echo "usage: js-server.sh serve --config FILE" >&2; exit 2; }
listen="$(sed -n 's/^listen *= *"\(.*\)"/\1/p' "$3")"
export PORT="${listen##*:}" HOST="${listen%:*}" SWITCHBOARD_CONFIG="$HERE/bench-deployment.json"
case "${JS_RUNTIME:-node}" in
  node) exec node "$HERE/../examples/node/server.mjs" ;;
  bun) exec "$HERE/../node_modules/bun/bin/bun.exe" "$HERE/../examples/bun/server.mjs" ;;
  deno) exec "$HERE/../node_modules/.bin/deno" run --allow-net=127.0.0.1 --allow-read --allow-env "$HERE/../examples/deno/server.mjs" ;;
  *) echo "JS_RUNTIME must be node, bun or deno" >&2; exit 2 ;;
esac
