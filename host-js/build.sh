#!/usr/bin/env bash
# Build the JS hosts: installs what is missing, then
#   1. wasm-bindgen-cli 0.2.130 (cargo install --debug; must equal the crate's pinned wasm-bindgen)
#   2. npm ci in host-js (deno, bun, miniflare/workerd, ws, binaryen from package-lock.json)
#   3. scripts/wasm-build.sh: cargo build --profile wasm-release --target wasm32-unknown-unknown
#      (CARGO_TARGET_DIR=target-wasm; the conformance guest is built in the same invocation)
#   4. wasm-bindgen --target web  ->  host-js/pkg/
#   5. wasm-opt -Os (npm binaryen 132; NOT Debian's binaryen, which corrupts the externref table)
# WASM_SPEED=1 builds for throughput instead of size (opt-level 3, wasm-opt -O2).
# and prints the .wasm sizes (raw and gzip -9).
#
# Usage: bash host-js/build.sh
# Steps whose inputs did not change are skipped: npm ci when node_modules was installed
# from the same package-lock.json, wasm-bindgen + wasm-opt when the cargo output is the
# same as for the current pkg/ (FORCE=1 redoes both).
# The wasm toolchain is the one scripts/setup.sh recorded in target-wasm/.toolchain
# ("rustup" or "debian"); without a record, rustup's wasm32 target if installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WBG=0.2.130
WASM_TARGET_DIR="$ROOT/target-wasm"
# Default: the workspace's size-optimised `wasm-release` profile (opt-level "s") and
# wasm-opt -Os. WASM_SPEED=1: the same profile at opt-level 3 and wasm-opt -O2 (about
# 1.5x the throughput, 20 % larger; see BENCHMARKS.md "JS hosts").
if [ "${WASM_SPEED:-0}" = 1 ]; then
  PROFILE=wasm-speed
  PROFILE_ARGS=(--config 'profile.wasm-speed.inherits="wasm-release"' --config 'profile.wasm-speed.opt-level=3' --profile wasm-speed)
  OPT_FLAG=-O2
else
  PROFILE=wasm-release
  PROFILE_ARGS=(--profile wasm-release)
  OPT_FLAG=-Os
fi
OUT="$WASM_TARGET_DIR/wasm32-unknown-unknown/$PROFILE"
PKG="$HERE/pkg"

t() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(t)" 'BEGIN { printf "%.1f", e - s }'; }
say() { echo "host-js build: $*"; }

# ---------------------------------------------------------------- 1. wasm-bindgen-cli
s=$(t)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WBG" ]; then
  say "installing wasm-bindgen-cli $WBG (cargo install --debug; a few minutes on 2 cores)"
  # --debug: an unoptimised build compiles in about a sixth of the time of a release
  # build (2 min instead of 13 on 2 cores) and processes our module in ~5 s instead of
  # ~1 s, with byte-identical output. --locked first (reproducible); its lockfile can
  # name a crate version the registry mirror lacks, so fall back to a fresh resolution.
  cargo install wasm-bindgen-cli --version "$WBG" --debug --locked --quiet \
    || cargo install wasm-bindgen-cli --version "$WBG" --debug --quiet
fi
say "wasm-bindgen $(wasm-bindgen --version | cut -d' ' -f2) ($(since "$s") s)"

# ---------------------------------------------------------------- 2. npm ci
s=$(t)
lock_sum="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [ "${FORCE:-0}" = 1 ] || [ "$(cat "$HERE/node_modules/.switchboard-lock" 2>/dev/null)" != "$lock_sum" ]; then
  # npm 11 skips the packages' install scripts; deno, bun and workerd still run (their
  # binaries come from the platform packages).
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$HERE/node_modules/.switchboard-lock"
fi
say "npm ci ($(since "$s") s): node $(node --version), deno $("$HERE/node_modules/.bin/deno" --version | head -1 | cut -d' ' -f2), bun $("$HERE/node_modules/.bin/bun" --version), $("$HERE/node_modules/.bin/workerd" --version)"

# ---------------------------------------------------------------- 3. wasm build
# scripts/wasm-build.sh builds this module together with the conformance guest (one
# compile of the shared dependency tree; a no-op when both are up to date).
s=$(t)
if [ "$PROFILE" = wasm-release ]; then
  bash "$ROOT/scripts/wasm-build.sh"
else
  bash "$ROOT/scripts/wasm-build.sh" -p switchboard-host-js "${PROFILE_ARGS[@]}"
fi
say "cargo build wasm32 ($PROFILE) ($(since "$s") s)"

src_sum="$(sha256sum "$OUT/switchboard_wasm.wasm" | cut -d' ' -f1) wasm-bindgen-$WBG wasm-opt$OPT_FLAG"
if [ "${FORCE:-0}" != 1 ] && [ -s "$PKG/switchboard_wasm_bg.wasm" ] && [ "$(cat "$PKG/.source" 2>/dev/null)" = "$src_sum" ]; then
  say "pkg/ is up to date with the cargo output (wasm-bindgen and wasm-opt skipped)"
else
  # -------------------------------------------------------------- 4. wasm-bindgen
  s=$(t)
  rm -rf "$PKG.tmp" && mkdir -p "$PKG.tmp"
  wasm-bindgen --target web --out-dir "$PKG.tmp" "$OUT/switchboard_wasm.wasm"
  say "wasm-bindgen --target web ($(since "$s") s)"

  # -------------------------------------------------------------- 5. wasm-opt
  s=$(t)
  "$HERE/node_modules/.bin/wasm-opt" "$OPT_FLAG" "$PKG.tmp/switchboard_wasm_bg.wasm" -o "$PKG.tmp/switchboard_wasm_bg.wasm"
  echo "$src_sum" > "$PKG.tmp/.source"
  rm -rf "$PKG" && mv "$PKG.tmp" "$PKG"
  say "wasm-opt $OPT_FLAG ($(since "$s") s)"
fi

raw=$(wc -c < "$PKG/switchboard_wasm_bg.wasm")
gz=$(gzip -9c "$PKG/switchboard_wasm_bg.wasm" | wc -c)
say "pkg/switchboard_wasm_bg.wasm: $raw bytes raw, $gz bytes gzip -9 (cargo output $(wc -c < "$OUT/switchboard_wasm.wasm") bytes)"
say "wasm imports: $(node -e '
  const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
  console.log(WebAssembly.Module.imports(m).map(i => i.module + "." + i.name.replace(/_[0-9a-f]{16}$/, "")).join(" "));
' "$PKG/switchboard_wasm_bg.wasm")"
