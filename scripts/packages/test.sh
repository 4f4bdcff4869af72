#!/usr/bin/env bash
# Packages as users get them. Needs the packages built: host-js (bash host-js/build.sh:
# the wasm in pkg/ and pkg-lean/, Deno and Bun in host-js/node_modules) and client-js
# (its dist/, built by client-js/scripts/test.sh); scripts/test.sh runs this after both.
#
#   1. npm: each package in NPM_PACKAGES is packed (`npm pack`), the tarball checked
#      (check-npm-tarball.mjs: not private, files, README, every export and its types),
#      then all tarballs are installed into one fresh temporary project, where each
#      package's smoke programs (<dir>/smoke/node.mjs, deno.ts, bun.mjs; not published)
#      run on Node, Deno (type-checked) and Bun, importing the package by its name.
#   2. cargo: `cargo package --no-verify` for the crates in CRATES, the publishable ones
#      (the others set `publish = false` and say why in their Cargo.toml), then
#      check-crate.mjs: every file the crate's code includes at compile time
#      (include_str!, include_bytes!, #[path]) is inside the .crate. (A full `cargo
#      package` verification builds both crates from scratch: about 5 minutes here.)
#
#   bash scripts/packages/test.sh           (scripts/test.sh step "packages")
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# npm packages: their directories. A new package is one line here plus its smoke/ folder.
NPM_PACKAGES=(
  host-js     # @switchboard/host-js
  client-js   # @switchboard/client (its smoke programs serve with @switchboard/host-js)
)
# Crates published to crates.io (the library and the server).
CRATES=(switchboard-engine switchboard)

locked=()
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then locked=(--locked); fi

BIN="$ROOT/host-js/node_modules/.bin"
for tool in deno bun; do
  [ -x "$BIN/$tool" ] || { echo "packages: $BIN/$tool missing (bash host-js/build.sh installs it)" >&2; exit 2; }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-packages.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/tarballs" "$TMP/project"

# ------------------------------------------------------------------ npm pack + checks
for dir in "${NPM_PACKAGES[@]}"; do
  for f in smoke/node.mjs smoke/deno.ts smoke/bun.mjs; do
    [ -s "$dir/$f" ] || { echo "packages: $dir/$f missing" >&2; exit 1; }
  done
  name="$(cd "$dir" && npm pack --silent --pack-destination "$TMP/tarballs")"
  echo "packages: npm pack $dir -> $name ($(wc -c <"$TMP/tarballs/$name") bytes)"
  node "$HERE/check-npm-tarball.mjs" "$TMP/tarballs/$name"
done

# ------------------------------------------------------------------ fresh project
cat >"$TMP/project/package.json" <<'JSON'
{ "name": "switchboard-package-smoke", "version": "0.0.0", "private": true, "type": "module" }
JSON
(cd "$TMP/project" && npm install --no-audit --no-fund --loglevel=error "$TMP"/tarballs/*.tgz)
for dir in "${NPM_PACKAGES[@]}"; do
  smoke="$TMP/project/smoke-$(basename "$dir")"
  cp -r "$dir/smoke" "$smoke"
  (
    cd "$TMP/project"
    timeout 60 node "$smoke/node.mjs"
    timeout 120 "$BIN/deno" run --quiet --check --allow-net=127.0.0.1 --allow-read --allow-env "$smoke/deno.ts"
    timeout 60 "$BIN/bun" "$smoke/bun.mjs"
  )
done

# ------------------------------------------------------------------ cargo package
pkgs=()
for c in "${CRATES[@]}"; do pkgs+=(-p "$c"); done
# --allow-dirty: this checks what would be published, not whether it is committed.
cargo package ${locked[@]+"${locked[@]}"} --no-verify --allow-dirty "${pkgs[@]}"
for c in "${CRATES[@]}"; do
  crate="$(ls -t "${CARGO_TARGET_DIR:-$ROOT/target}/package/$c"-[0-9]*.crate | head -n 1)"
  node "$HERE/check-crate.mjs" "$crate"
done
echo "packages: ${#NPM_PACKAGES[@]} npm package(s) installed from tarballs and smoke-tested on node, deno, bun; ${#CRATES[@]} crate(s) packaged"
