#!/usr/bin/env bash
# Build the JS hosts: installs what is missing, then
#   1. wasm-bindgen-cli 0.2.130 (cargo install --debug; must equal the crate's pinned wasm-bindgen)
#   2. npm ci in host-js (deno, bun, miniflare/workerd, ws, binaryen from package-lock.json)
#   3. scripts/wasm-build.sh: cargo build --target wasm32-unknown-unknown of the full module
#      (profile wasm-release, with the conformance guest) and the lean one (wasm-lean, host-js
#      without the `json-schema` feature); CARGO_TARGET_DIR=target-wasm
#   4. wasm-bindgen --target web  ->  host-js/pkg/ (full) and host-js/pkg-lean/ (lean)
#   5. wasm-opt -O2 (npm binaryen 132; NOT Debian's binaryen, which corrupts the externref
#      table). -O2 rather than -Os: the profile already keeps cold code small, and -Os
#      undoes the hot crates' opt-level 3 for 0.2 % fewer gzipped bytes.
# and prints the .wasm sizes (raw and gzip -9). Both modules have the same exports, so
# they share pkg/'s JS glue; the build fails if wasm-bindgen's glue for them differs.
#
# Usage: bash host-js/build.sh
# Steps whose inputs did not change are skipped: npm ci when node_modules was installed
# from the same package-lock.json, wasm-bindgen + wasm-opt when the cargo output is the
# same as for the current pkg/ or pkg-lean/ (FORCE=1 redoes them).
# The wasm toolchain is the one scripts/setup.sh recorded in target-wasm/.toolchain
# ("rustup" or "debian"); without a record, rustup's wasm32 target if installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WBG=0.2.130
WASM_TARGET_DIR="$ROOT/target-wasm"
OPT_FLAG=-O2
OUT_DIR="$WASM_TARGET_DIR/wasm32-unknown-unknown"

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
# scripts/wasm-build.sh builds both modules and the conformance guest (a no-op when all
# are up to date).
s=$(t)
bash "$ROOT/scripts/wasm-build.sh"
say "cargo build wasm32 (wasm-release, wasm-lean) ($(since "$s") s)"

# ------------------------------------------------------- 4 + 5. wasm-bindgen, wasm-opt
# package NAME PROFILE: $OUT_DIR/PROFILE/switchboard_wasm.wasm -> host-js/NAME/
package() {
  local name=$1 profile=$2
  local out="$OUT_DIR/$profile/switchboard_wasm.wasm" pkg="$HERE/$1"
  local src_sum s
  src_sum="$(sha256sum "$out" | cut -d' ' -f1) wasm-bindgen-$WBG wasm-opt$OPT_FLAG"
  if [ "${FORCE:-0}" != 1 ] && [ -s "$pkg/switchboard_wasm_bg.wasm" ] && [ "$(cat "$pkg/.source" 2>/dev/null)" = "$src_sum" ]; then
    say "$name/ is up to date with the cargo output (wasm-bindgen and wasm-opt skipped)"
  else
    s=$(t)
    rm -rf "$pkg.tmp" && mkdir -p "$pkg.tmp"
    wasm-bindgen --target web --out-dir "$pkg.tmp" "$out"
    "$HERE/node_modules/.bin/wasm-opt" "$OPT_FLAG" "$pkg.tmp/switchboard_wasm_bg.wasm" -o "$pkg.tmp/switchboard_wasm_bg.wasm"
    echo "$src_sum" > "$pkg.tmp/.source"
    rm -rf "$pkg" && mv "$pkg.tmp" "$pkg"
    say "$name/: wasm-bindgen --target web, wasm-opt $OPT_FLAG ($(since "$s") s)"
  fi
  local raw gz
  raw=$(wc -c < "$pkg/switchboard_wasm_bg.wasm")
  gz=$(gzip -9c "$pkg/switchboard_wasm_bg.wasm" | wc -c)
  say "$name/switchboard_wasm_bg.wasm: $raw bytes raw, $gz bytes gzip -9 (cargo output $(wc -c < "$out") bytes)"
}
package pkg wasm-release
package pkg-lean wasm-lean
if ! cmp -s "$HERE/pkg/switchboard_wasm.js" "$HERE/pkg-lean/switchboard_wasm.js"; then
  say "pkg/ and pkg-lean/ have different JS glue: the lean module cannot share pkg/'s glue" >&2
  exit 1
fi
PKG="$HERE/pkg"
say "wasm imports: $(node -e '
  const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
  console.log(WebAssembly.Module.imports(m).map(i => i.module + "." + i.name.replace(/_[0-9a-f]{16}$/, "")).join(" "));
' "$PKG/switchboard_wasm_bg.wasm")"
