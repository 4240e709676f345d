# Shared by the scripts: paths, the build cache, and installing what a fresh machine lacks.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One build cache outside the clone, so CI and every checkout reuse the RocksDB build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/ticketd/target}"
# Where the scripts find ticketd's binaries: the debug build, unless TICKETD_BIN_DIR names a
# directory of prebuilt ones (the benchmark's release build), which is then used as it is.
BIN_DIR="${TICKETD_BIN_DIR:-$CARGO_TARGET_DIR/debug}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

apt_updated=0
# ensure_pkg COMMAND_OR_FILE PACKAGE: installs the Debian package when the thing is missing.
ensure_pkg() {
  local probe="$1" pkg="$2"
  if [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1; then return 0; fi
  log "installing $pkg (missing $probe)"
  if [ "$(id -u)" -ne 0 ]; then die "need root to install $pkg; install it and retry"; fi
  if [ $apt_updated -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null || die "apt-get install $pkg failed"
}

ensure_build_deps() {
  mkdir -p "$CARGO_TARGET_DIR"
  command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup)"
  # RocksDB's bindings are generated at build time with libclang.
  # (A new machine has libclang-cpp but not libclang itself: ask dpkg, not the file system.)
  if [ -z "${LIBCLANG_PATH:-}" ] && ! dpkg -s libclang-dev >/dev/null 2>&1; then
    ensure_pkg /nonexistent-libclang libclang-dev
  fi
  ensure_pkg g++ g++
}

# shared_threads N: async runtime threads for each of N server processes sharing this machine
# (its CPUs divided among them, at least 1); TICKETD_RUNTIME_THREADS overrides it.
shared_threads() {
  local cpus
  cpus=$(nproc)
  echo "${TICKETD_RUNTIME_THREADS:-$(( cpus / $1 > 0 ? cpus / $1 : 1 ))}"
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest >/dev/null || die "cargo install cargo-nextest failed"
  fi
}

build_bins() {
  if [ -n "${TICKETD_BIN_DIR:-}" ]; then
    [ -x "$TICKETD_BIN_DIR/ticketd" ] || die "TICKETD_BIN_DIR=$TICKETD_BIN_DIR has no ticketd"
    return 0
  fi
  log "building ticketd, ticketctl and the provider simulators (first build compiles RocksDB: about 20 minutes on 2 cores)"
  (cd "$ROOT" && cargo build --workspace --bin ticketd --bin ticketctl --bin ticketd-sim) || die "build failed"
}

# ensure_certs DIR NODES: the development CA and certificates in DIR (`ticketd certs dev`: the
# CA, node-1..NODES, api-dev, admin-dev), made on first start and kept after.
ensure_certs() {
  "$BIN_DIR/ticketd" certs dev --dir "$1" --nodes "$2" >/dev/null || die "ticketd certs dev --dir $1 failed"
}

# tls_args DIR NAME: sets TLS_ARGS to the --cacert, --cert and --key flags of certificate NAME
# (node-1, api-dev, admin-dev, ...) in DIR.
tls_args() {
  TLS_ARGS=(--cacert "$1/ca.pem" --cert "$1/$2.pem" --key "$1/$2-key.pem")
}

# ensure_schemathesis: a virtualenv with schemathesis (PyPI) for the API fuzz test; exports
# TICKETD_SCHEMATHESIS with its path.
ensure_schemathesis() {
  local venv="${TICKETD_VENV:-/var/cache/ticketd/venv}"
  if [ ! -x "$venv/bin/schemathesis" ]; then
    if [ ! -x "$venv/bin/pip" ] && ! /usr/bin/python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      ensure_pkg /nonexistent-python3-venv python3-venv
      /usr/bin/python3 -m venv "$venv" || die "could not create a Python virtualenv at $venv"
    fi
    log "installing schemathesis into $venv"
    "$venv/bin/pip" install --quiet "schemathesis>=4,<5" \
      || die "pip could not install schemathesis from PyPI into $venv"
  fi
  export TICKETD_SCHEMATHESIS="$venv/bin/schemathesis"
}
