#!/usr/bin/env bash
# Conformance suite: build the wasm guest (raw C-ABI module, no JS glue) and the native
# host, then run every vector on every target and print the vector x target matrix with
# the summary line `N passed, N failed` (exit 1 if any cell fails).
#
#   scripts/conformance.sh                 # vector checks + engine + wasm + live:native
#   scripts/conformance.sh --build-only    # only build the wasm guest
#   scripts/conformance.sh --failures-only # any other args go to the `conformance` binary
#
# The guest lives in its own workspace (conformance/wasm-guest, excluded from the root
# workspace) and builds into target-wasm/ so it never blocks native builds.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
args=()
for a in "$@"; do
  if [ "$a" = "--build-only" ]; then build_only=1; else args+=("$a"); fi
done

guest_manifest=conformance/wasm-guest/Cargo.toml
export CARGO_TARGET_DIR_WASM="$PWD/target-wasm"

if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR_WASM" cargo build --release \
    --manifest-path "$guest_manifest" --target wasm32-unknown-unknown
elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  # Fallback: Debian's rustc-web with std sources (see shared research, wasm-toolchain.md).
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR_WASM" /usr/bin/cargo build --release \
    --manifest-path "$guest_manifest" --target wasm32-unknown-unknown \
    -Z build-std=std,panic_abort
else
  echo "conformance.sh: no wasm32-unknown-unknown toolchain (rustup target add wasm32-unknown-unknown)" >&2
  exit 2
fi
wasm="$CARGO_TARGET_DIR_WASM/wasm32-unknown-unknown/release/conformance_guest.wasm"
echo "wasm guest: $wasm ($(wc -c <"$wasm") bytes)"
[ "$build_only" = 1 ] && exit 0

cargo build -p switchboard --bin switchboard
exec cargo run --release -p switchboard-conformance --bin conformance -- --all --wasm "$wasm" ${args[@]+"${args[@]}"}
