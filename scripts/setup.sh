#!/usr/bin/env bash
# Install what the test suite needs and is missing; nothing else. Idempotent, quiet on success.
#
#   bash scripts/setup.sh
#
# Needs a Rust toolchain (rustup's cargo on PATH). Installs, only when missing:
#   - rustfmt and clippy        (rustup component add)
#   - cargo-nextest             (cargo install cargo-nextest --locked)
#   - wasm32-unknown-unknown    (rustup target add; if that fails, Debian's rustc-web,
#                                cargo-web, rust-web-src and lld-22 with -Z build-std)
#   - Chromium                  (Debian's `chromium` package, /usr/bin/chromium: the
#                                client SDK's browser test; CHROMIUM_PATH names another)
#   - curl                      (Debian package; the README tour's commands use it)
#   - redis-server              (Debian package; the cluster end-to-end test starts its
#                                own instance on 127.0.0.1 with a temp dir and stops it)
#   - postgresql                (Debian package; the PostgreSQL store tests start their own
#                                server on 127.0.0.1 with a temp data dir and stop it)
# The wasm toolchain chosen is written to target-wasm/.toolchain ("rustup" or "debian");
# scripts/test.sh reads it. Set WASM_TOOLCHAIN=rustup|debian to force one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# Run a command quietly; on failure show its output and stop.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    die "command failed: $*"
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# ---------------------------------------------------------------- Rust toolchain
command -v cargo >/dev/null 2>&1 \
  || die "cargo not found. Install Rust with rustup (https://rustup.rs), then re-run."
HAVE_RUSTUP=0
command -v rustup >/dev/null 2>&1 && HAVE_RUSTUP=1

# ---------------------------------------------------------------- rustfmt, clippy
for comp in rustfmt clippy; do
  sub=$([ "$comp" = rustfmt ] && echo fmt || echo clippy)
  if ! cargo "$sub" --version >/dev/null 2>&1; then
    [ "$HAVE_RUSTUP" = 1 ] || die "cargo $sub is missing and rustup is not available to install $comp"
    log "installing rustup component $comp"
    quiet rustup component add "$comp"
  fi
done

# ---------------------------------------------------------------- cargo-nextest
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest (cargo install, takes a few minutes)"
  cargo install cargo-nextest --locked --quiet || die "cargo install cargo-nextest failed"
  cargo nextest --version >/dev/null 2>&1 || die "cargo-nextest installed but 'cargo nextest' does not run"
fi

# ---------------------------------------------------------------- wasm32-unknown-unknown
have_rustup_wasm() {
  [ "$HAVE_RUSTUP" = 1 ] && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}
DEBIAN_PKGS=(rustc-web cargo-web rust-web-src lld-22)
have_debian_wasm() {
  dpkg -s "${DEBIAN_PKGS[@]}" >/dev/null 2>&1 && [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
    && [ -x /usr/bin/rust-lld ]
}
setup_debian_wasm() {
  if ! have_debian_wasm; then
    command -v apt-get >/dev/null 2>&1 \
      || die "no wasm32 target: 'rustup target add wasm32-unknown-unknown' failed and apt-get is not available"
    log "installing Debian ${DEBIAN_PKGS[*]} (wasm fallback toolchain)"
    quiet as_root apt-get update -q
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${DEBIAN_PKGS[@]}"
    have_debian_wasm || die "Debian wasm toolchain installed but /usr/bin/cargo, /usr/bin/rustc or /usr/bin/rust-lld is missing"
  fi
}

WASM="${WASM_TOOLCHAIN:-}"
case "$WASM" in
  rustup)
    have_rustup_wasm || quiet rustup target add wasm32-unknown-unknown ;;
  debian)
    setup_debian_wasm ;;
  "")
    if have_rustup_wasm; then
      WASM=rustup
    elif [ "$HAVE_RUSTUP" = 1 ] && rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
      log "installed rustup target wasm32-unknown-unknown"
      WASM=rustup
    else
      log "rustup could not install wasm32-unknown-unknown; falling back to Debian rustc-web"
      setup_debian_wasm
      WASM=debian
    fi ;;
  *) die "WASM_TOOLCHAIN must be 'rustup' or 'debian', got '$WASM'" ;;
esac

mkdir -p target-wasm
if [ "$(cat target-wasm/.toolchain 2>/dev/null)" != "$WASM" ]; then
  echo "$WASM" > target-wasm/.toolchain
fi

# ---------------------------------------------------------------- Chromium (client-js browser test)
if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "Chromium is missing (client-js browser test) and apt-get is not available; set CHROMIUM_PATH"
  log "installing Debian chromium (headless browser for the client-js test)"
  quiet as_root apt-get update -q
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  [ -x /usr/bin/chromium ] || die "Debian chromium installed but /usr/bin/chromium is missing"
fi

# ---------------------------------------------------------------- curl (the README tour)
# scripts/tour/test.sh runs the README's tour, whose commands use curl.
if ! command -v curl >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "curl is missing and apt-get is not available to install it"
  log "installing Debian curl (the README tour's HTTP client)"
  quiet as_root apt-get update -q
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl
fi

# ---------------------------------------------------------------- redis-server (cluster e2e)
# host-native/tests/cluster_e2e.rs starts `redis-server --port P --dir TMP --save ''` on
# 127.0.0.1 and kills it at the end; the package's own service is not needed.
if ! command -v redis-server >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "redis-server is missing and apt-get is not available to install it"
  log "installing Debian redis-server (the cluster end-to-end test's broker)"
  quiet as_root apt-get update -q
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
  command -v redis-server >/dev/null 2>&1 || die "Debian redis-server installed but redis-server is not on PATH"
fi

# ---------------------------------------------------------------- postgresql (PostgreSQL store tests)
# host-native/tests/postgres_store.rs runs initdb and postgres from /usr/lib/postgresql/*/bin
# (as the `postgres` user when run as root) on 127.0.0.1 with a temp data dir and a random
# port, and stops it at the end; the package's own cluster and service are not needed.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ] || [ ! -x "$(pg_bin)/postgres" ]; then
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL (initdb, postgres) is missing and apt-get is not available to install it"
  log "installing Debian postgresql (the PostgreSQL store tests' database)"
  quiet as_root apt-get update -q
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  [ -x "$(pg_bin)/initdb" ] || die "Debian postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
fi
