#!/usr/bin/env bash
# The one test command: installs whatever is missing (scripts/setup.sh), then runs every
# check in order and stops at the first failure:
#
#   1. setup        scripts/setup.sh (nextest, rustfmt/clippy, wasm32 target, Chromium; host-js/build.sh
#                   installs the JS side: wasm-bindgen-cli, Node packages from the lockfile)
#   2. fmt          cargo fmt --all --check
#   3. clippy       cargo clippy --workspace --all-targets -- -D warnings   (type-checks benches too)
#   4. nextest      cargo nextest run --workspace --lib --bins --tests --examples
#                   (criterion benches are harness=false: compiled by clippy, never run as tests)
#   5. doctests     cargo test --workspace --doc          (nextest cannot run doctests)
#   5b. fuzz        the fuzz corpus (engine/fuzz/corpus/frames) and 2000 random inputs
#                   through the fuzz harness on stable
#   6. lean         the engine without its default `json-schema` feature (what the JS hosts'
#                   lean module links): clippy, then its unit tests
#   7. demo         cargo run -p switchboard-engine --example demo   (the README's run command)
#   8. wasm         scripts/wasm-build.sh: the JS hosts' full module and the conformance guest
#                   in one cargo invocation (wasm-release), then the lean module (wasm-lean),
#                   for wasm32-unknown-unknown in target-wasm/
#   9. host-js      host-js/test.sh: wasm-bindgen-cli + npm ci (lockfile) + wasm-bindgen +
#                   wasm-opt, then the JS tests on Node, Deno, Bun and workerd
#  10. client-js    client-js/scripts/test.sh: npm ci (lockfile), build (tsc, bundle, console
#                   assets check), unit tests, e2e against the native and Node hosts (killed
#                   and restarted under subscribed clients), headless Chromium (Debian's,
#                   installed by setup.sh): the bundle against the native host + the console
#  11. conformance  scripts/conformance.sh: every vector on every target (vector checks,
#                   in-process engine, the wasm guest under wasmtime, and live on the native
#                   host and the Node, Deno, Bun and workerd example servers: one server per
#                   host and vector config, hosts in parallel, test control channel on)
#                   -> one matrix + `N passed, N failed`
#  11. tour         scripts/tour/test.sh: every command of README.md's "Tour" (wscat from
#                   scripts/tour/package-lock.json, curl) against a fresh demo server,
#                   every documented answer checked
#  12. packages     scripts/packages/test.sh: `npm pack` of the JS packages, the tarballs
#                   installed into a fresh project and smoke-tested on Node, Deno and Bun
#                   by package name; `cargo package --no-verify` of the publishable crates
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
    STEPS+=("$(printf '%-12s FAILED  %7s s  (exit %d)' "$name" "$t" "$rc")")
    summary "FAILED: step '$name' (exit $rc)"
    exit "$rc"
  fi
  STEPS+=("$(printf '%-12s ok      %7s s' "$name" "$t")")
  echo "---- $name ok (${t} s)"
}

# ------------------------------------------------------------------------ steps
wasm_build() {
  bash scripts/wasm-build.sh
  local dir="$WASM_TARGET_DIR/wasm32-unknown-unknown" f
  for f in wasm-release/switchboard_wasm.wasm wasm-release/conformance_guest.wasm wasm-lean/switchboard_wasm.wasm; do
    if [ ! -s "$dir/$f" ]; then
      echo "expected $dir/$f after the wasm build, found nothing" >&2
      return 1
    fi
    echo "built ${dir#"$ROOT"/}/$f ($(wc -c < "$dir/$f") bytes)"
  done
}

lean_engine() {
  cargo clippy "${LOCKED[@]}" -p switchboard-engine --no-default-features --lib --tests -- -D warnings
  cargo nextest run "${LOCKED[@]}" -p switchboard-engine --no-default-features --lib --no-fail-fast
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
# Fuzz smoke on stable: the committed corpus through the harness, then 2000 random inputs
# (bounded, fixed seed). Longer: `cargo +nightly fuzz run frames -- -max_total_time=600`
# in engine/fuzz (engine/README.md).
step fuzz     env PROPTEST_CASES=2000 cargo test "${LOCKED[@]}" -q -p switchboard-engine --test proptest_engine fuzz
step lean     lean_engine
step demo     demo_run
step wasm     wasm_build
# host-js/test.sh includes test/conformance.test.mjs: the live runner against the four
# example servers as shipped (no test control channel: the vectors that need it are n/a);
# the matrix below plays every vector with the test control channel.
step host-js  bash host-js/test.sh
step client-js bash client-js/scripts/test.sh
step conformance env JS_HOSTS=1 bash scripts/conformance.sh --failures-only
step tour     bash scripts/tour/test.sh
step packages bash scripts/packages/test.sh

summary "ALL PASSED: ${#STEPS[@]} steps"
