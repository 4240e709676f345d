#!/usr/bin/env bash
# Runs every test: format and lint gate, unit and property tests, and the integration tests that
# start real clusters of ticketd processes on loopback. Installs what a fresh machine lacks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_build_deps
ensure_nextest
# A real SMTP server for the notification tests (Debian's, run with Debian's python).
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then ensure_pkg /nonexistent-aiosmtpd python3-aiosmtpd; fi
# Headless Chromium and its WebDriver for the browser test (screenshots land in
# $CARGO_TARGET_DIR/browser-screenshots, or TICKETD_SCREENSHOTS).
ensure_pkg chromium chromium
ensure_pkg chromedriver chromium-driver
# iptables for the chaos tests' partitions, packet loss and latency between network namespaces
# (without it they fall back to loopback and skip those faults).
ensure_pkg iptables iptables
# libfaketime for the chaos tests' clock skew.
ensure_pkg /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 faketime
# schemathesis (PyPI) fuzzes the HTTP API against its OpenAPI document.
ensure_schemathesis

# Every helper, test, chaos run, script and benchmark runs the cluster with mutual TLS: the flag
# that turns it off appears only where the binaries define and document it (cluster/src, raft/src,
# docs, README), and in the one benchmark measurement that compares TLS against plain text, each
# of whose lines says so.
log "checking that nothing runs a cluster without TLS"
insecure_uses=$(git -C "$ROOT" grep -n -e '--insecure' -- . ':!cluster/src/' ':!raft/src/' ':!docs/' ':!README.md' ':!scripts/test.sh' \
  | grep -v '^scripts/bench/run.sh:.*# the plain-text peer of the TLS comparison$' || true)
[ -z "$insecure_uses" ] || die "--insecure outside the binaries' flag definitions and docs:
$insecure_uses"
FUZZ=(--manifest-path store/fuzz/Cargo.toml)
log "format check"
cargo fmt --all --check || die "cargo fmt --all --check failed: run cargo fmt --all"
cargo fmt "${FUZZ[@]}" --check || die "store/fuzz is not formatted: run cargo fmt ${FUZZ[*]}"
log "clippy"
cargo clippy --workspace --all-targets -- -D warnings || die "clippy found problems"
cargo clippy "${FUZZ[@]}" --no-default-features --all-targets -- -D warnings \
  || die "clippy found problems in store/fuzz"
# No module of a crate depends on itself through others, and every crate root denies functions
# over 100 lines (scripts/house): it prints each cycle with the lines that make it.
log "import cycles and the line limit"
cargo run -q --bin house-check -- . || die "house-check failed: an import cycle, or a crate root without the line limit"
# What ships links no test double, peer or load generator: the node's crate depends (normal
# edges) on none of the test and benchmark crates or the benchmark's clients.
log "what ships"
shipped_extras=$(cargo tree -p ticketd-cluster -e normal --prefix none --format '{p}' \
  | awk '{print $1}' | sort -u \
  | grep -E '^(tokio-postgres|hdrhistogram|ticketd-(testkit|bench|chaos|checker|sim|workload|house))$' || true)
[ -z "$shipped_extras" ] || die "the ticketd binaries' crate depends on what must not ship: $shipped_extras"
# The rolling upgrade test (t90) runs a cluster of this version upgraded to the next one: the
# next version's ticketd (feature next-version: binary version 3, one more command, log entries
# in the encoding 2 form) is built first, which rebuilds only the workspace's crates (about a
# minute); the test build below makes this version's binaries again.
log "building the next version's ticketd for the rolling upgrade test"
cargo build --workspace --bin ticketd --features ticketd-cluster/next-version \
  || die "the next version's build failed"
mkdir -p "$CARGO_TARGET_DIR/next-version"
cp -f "$CARGO_TARGET_DIR/debug/ticketd" "$CARGO_TARGET_DIR/next-version/ticketd"
export TICKETD_NEXT_BIN="$CARGO_TARGET_DIR/next-version/ticketd"
log "tests"
cargo nextest run --workspace --no-fail-fast "$@"
# The state machine's fuzzer, from the committed corpus (scripts/fuzz.sh; about 3 minutes with
# its build, longer the first time cargo-fuzz is installed).
scripts/fuzz.sh "${TICKETD_FUZZ_SECONDS:-60}"
