#!/usr/bin/env bash
# Conformance suite: build the wasm guest (raw C-ABI module, no JS glue) and the native
# host, then run every vector on every target and print the vector x target matrix with
# the summary line `N passed, N failed` (exit 1 if any cell fails).
#
#   scripts/conformance.sh                 # vector checks + engine + wasm + live:native
#   scripts/conformance.sh --build-only    # only build the wasm guest (and host-js module)
#   scripts/conformance.sh --failures-only # any other args go to the `conformance` binary
#
# The guest is built by scripts/wasm-build.sh (with the JS hosts' module, wasm-release
# profile, into target-wasm/). The runner and the native host are the `dev` profile
# binaries, the same ones `cargo nextest` builds, so after the test step nothing is
# compiled twice. scripts/test.sh runs this script (CI).
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
exec "$target_dir/debug/conformance" --all --wasm "$wasm" \
  --live-native "$target_dir/debug/switchboard" ${args[@]+"${args[@]}"}
