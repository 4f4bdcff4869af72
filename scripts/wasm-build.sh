#!/usr/bin/env bash
# Build the workspace's wasm32-unknown-unknown artifacts into
# target-wasm/wasm32-unknown-unknown/<profile>/:
#   wasm-release (ONE cargo invocation, so the engine's dependency tree compiles once):
#     - host-js (switchboard_wasm.wasm)            the JS hosts' full module
#     - conformance-guest (conformance_guest.wasm) the conformance runner for wasmtime
#   wasm-lean (a second invocation: features differ, so the engine builds again):
#     - host-js without `json-schema` (switchboard_wasm.wasm)  the lean module
#
#   bash scripts/wasm-build.sh                      # all three
#   bash scripts/wasm-build.sh -p switchboard-host-js --profile my-profile --config ...
#                                                   # any arguments replace the defaults
#
# The toolchain is the one scripts/setup.sh recorded in target-wasm/.toolchain: rustup's
# wasm32 target, or Debian's rustc-web with -Z build-std. The getrandom backend flag for
# wasm32 comes from .cargo/config.toml. CI sets CI=true: Cargo.lock must be up to date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TARGET_DIR="$ROOT/target-wasm"

builds=()
if [ $# -eq 0 ]; then
  builds=("-p switchboard-host-js -p conformance-guest --profile wasm-release"
          "-p switchboard-host-js --no-default-features --profile wasm-lean")
fi

toolchain="$(cat target-wasm/.toolchain 2>/dev/null || true)"
if [ -z "$toolchain" ]; then
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    toolchain=rustup
  else
    echo "wasm-build: no wasm toolchain recorded in target-wasm/.toolchain (run scripts/setup.sh)" >&2
    exit 2
  fi
fi

build() {
  case "$toolchain" in
    rustup)
      locked=()
      if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then locked=(--locked); fi
      echo "wasm-build: rustup ($(rustc --version)): cargo build --target wasm32-unknown-unknown --lib $*"
      cargo build ${locked[@]+"${locked[@]}"} --target wasm32-unknown-unknown --lib "$@"
      ;;
    debian)
      # No --locked: -Z build-std resolves std's own dependencies as well; the native
      # steps already check Cargo.lock.
      echo "wasm-build: Debian ($(/usr/bin/rustc --version)) with -Z build-std: $*"
      RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo build -Z build-std=std,panic_abort --target wasm32-unknown-unknown --lib "$@"
      ;;
    *)
      echo "wasm-build: unknown toolchain '$toolchain' in target-wasm/.toolchain" >&2
      exit 2
      ;;
  esac
}

if [ ${#builds[@]} -eq 0 ]; then
  build "$@"
else
  for b in "${builds[@]}"; do
    # shellcheck disable=SC2086 # each entry is a list of plain words
    build $b
  done
fi
