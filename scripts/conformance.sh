#!/usr/bin/env bash
# Conformance suite: build the wasm guest (raw C-ABI module, no JS glue) and the native
# host, then run every vector on every target and print the vector x target matrix with
# the summary line `N passed, N failed` (exit 1 if any cell fails).
#
#   scripts/conformance.sh                 # vector checks + engine + wasm + every vector live on
#                                          # native, node, deno, bun, workerd, workerd-lean (in parallel,
#                                          # one server per host and distinct vector config)
#   scripts/conformance.sh --build-only    # only build the wasm guest (and host-js module)
#   scripts/conformance.sh --failures-only # any other args go to the `conformance` binary
#
# The guest is built by scripts/wasm-build.sh (with the JS hosts' module, wasm-release
# profile, into target-wasm/). The runner and the native host are the `dev` profile
# binaries, the same ones `cargo nextest` builds, so after the test step nothing is
# compiled twice. scripts/test.sh runs this script (CI) after host-js/test.sh built the JS
# hosts.
#
# JS_HOSTS=auto (default) adds the JS hosts (the server factory of host-js/test/live-servers.mjs
# starts their example servers) when host-js is built (host-js/pkg and host-js/node_modules exist);
# JS_HOSTS=1 requires them (CI), JS_HOSTS=0 leaves them out.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

build_only=0
args=()
for a in "$@"; do
  if [ "$a" = "--build-only" ]; then build_only=1; else args+=("$a"); fi
done

locked=()
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then locked=(--locked); fi

bash scripts/wasm-build.sh
wasm="$PWD/target-wasm/wasm32-unknown-unknown/wasm-release/conformance_guest.wasm"
echo "wasm guest: ${wasm#"$PWD"/} ($(wc -c <"$wasm") bytes)"
[ "$build_only" = 1 ] && exit 0

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build ${locked[@]+"${locked[@]}"} -q -p switchboard --bin switchboard -p switchboard-conformance --bin conformance
cmd=("$target_dir/debug/conformance" --all --wasm "$wasm" --live-native "$target_dir/debug/switchboard")

js_built=0
[ -s host-js/pkg/switchboard_wasm_bg.wasm ] && [ -s host-js/pkg-lean/switchboard_wasm_bg.wasm ] && [ -d host-js/node_modules ] && js_built=1
case "${JS_HOSTS:-auto}" in
  1)
    [ "$js_built" = 1 ] || { echo "conformance.sh: JS_HOSTS=1 but host-js is not built (bash host-js/build.sh)" >&2; exit 2; }
    use_js=1 ;;
  0) use_js=0 ;;
  *) use_js=$js_built
     [ "$js_built" = 1 ] || echo "conformance.sh: host-js not built; JS hosts left out of the matrix (bash host-js/build.sh)" ;;
esac
if [ "$use_js" = 1 ]; then
  exec node host-js/test/live-servers.mjs node,deno,bun,workerd,workerd-lean -- "${cmd[@]}" ${args[@]+"${args[@]}"}
fi
exec "${cmd[@]}" ${args[@]+"${args[@]}"}
