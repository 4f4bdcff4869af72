#!/usr/bin/env bash
# The one test command: installs whatever is missing (scripts/setup.sh), then runs every
# check in order and stops at the first failure:
#
#   1. setup        scripts/setup.sh (nextest, rustfmt/clippy, wasm32 target)
#   2. fmt          cargo fmt --all --check
#   3. clippy       cargo clippy --workspace --all-targets -- -D warnings   (type-checks benches too)
#   4. nextest      cargo nextest run --workspace --lib --bins --tests --examples
#                   (criterion benches are harness=false: compiled by clippy, never run as tests)
#   5. doctests     cargo test --workspace --doc          (nextest cannot run doctests)
#   6. demo         cargo run -p switchboard-engine --example demo   (the README's run command)
#   7. wasm         cargo build -p switchboard-engine --target wasm32-unknown-unknown (dev profile: proves it builds)
#                   in its own target dir (target-wasm/), then checks the rlib exists
#
# Usage: bash scripts/test.sh          (CI runs this through .ci/run with CI=true)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

LOCKED=()
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
  export CARGO_TERM_COLOR=never     # plain logs
  export CARGO_INCREMENTAL=0        # smaller target dir, nothing to reuse on a fresh clone
  export NEXTEST_HIDE_PROGRESS_BAR=1
  LOCKED=(--locked)                 # Cargo.lock must be committed and up to date
fi

# Native steps share one target dir (default ./target, or $CARGO_TARGET_DIR if set).
# The wasm build gets its own, so it never waits on the native artifact lock.
WASM_TARGET_DIR="$ROOT/target-wasm"

STEPS=()
START_ALL=$EPOCHREALTIME

elapsed() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'; }

summary() {
  local status="$1"
  echo
  echo "================================================================ summary"
  local line
  for line in "${STEPS[@]}"; do echo "  $line"; done
  echo "$status (total $(elapsed "$START_ALL") s)"
}

# step NAME CMD...: print a header, run CMD, record its time; on failure print the summary and exit.
step() {
  local name="$1" start rc=0
  shift
  echo
  echo "================================================================ $name"
  echo "\$ $*"
  start=$EPOCHREALTIME
  # A subshell with its own `set -e`, outside any `||`, so functions stop at their first failure.
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  local t
  t=$(elapsed "$start")
  if [ "$rc" -ne 0 ]; then
    STEPS+=("$(printf '%-10s FAILED  %7s s  (exit %d)' "$name" "$t" "$rc")")
    summary "FAILED: step '$name' (exit $rc)"
    exit "$rc"
  fi
  STEPS+=("$(printf '%-10s ok      %7s s' "$name" "$t")")
  echo "---- $name ok (${t} s)"
}

# ------------------------------------------------------------------------ steps
wasm_build() {
  local toolchain
  toolchain="$(cat "$WASM_TARGET_DIR/.toolchain" 2>/dev/null || true)"
  case "$toolchain" in
    rustup)
      echo "wasm toolchain: rustup ($(rustc --version))"
      CARGO_TARGET_DIR="$WASM_TARGET_DIR" \
        cargo build "${LOCKED[@]}" -p switchboard-engine --target wasm32-unknown-unknown
      ;;
    debian)
      echo "wasm toolchain: Debian ($(/usr/bin/rustc --version)) with -Z build-std"
      # No --locked here: -Z build-std resolves std's own dependencies as well; the native
      # steps already check Cargo.lock.
      CARGO_TARGET_DIR="$WASM_TARGET_DIR" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo build -Z build-std=std,panic_abort \
        -p switchboard-engine --target wasm32-unknown-unknown
      ;;
    *)
      echo "no wasm toolchain recorded in $WASM_TARGET_DIR/.toolchain (run scripts/setup.sh)" >&2
      return 1
      ;;
  esac
  local rlib="$WASM_TARGET_DIR/wasm32-unknown-unknown/debug/libengine.rlib"
  if [ ! -s "$rlib" ]; then
    echo "expected $rlib after the wasm build, found nothing" >&2
    return 1
  fi
  echo "built ${rlib#"$ROOT"/} ($(wc -c < "$rlib") bytes)"
}

demo_run() {
  local out
  out="$(mktemp)"
  if ! cargo run "${LOCKED[@]}" -q -p switchboard-engine --example demo > "$out" 2>&1; then
    cat "$out"
    rm -f "$out"
    return 1
  fi
  echo "demo printed $(wc -l < "$out") lines; last: $(tail -n 1 "$out")"
  rm -f "$out"
}

step setup    bash scripts/setup.sh
step fmt      cargo fmt --all --check
step clippy   cargo clippy "${LOCKED[@]}" --workspace --all-targets -- -D warnings
step nextest  cargo nextest run "${LOCKED[@]}" --workspace --lib --bins --tests --examples --no-fail-fast
step doctests cargo test "${LOCKED[@]}" --workspace --doc
step demo     demo_run
step wasm     wasm_build

summary "ALL PASSED: ${#STEPS[@]} steps"
