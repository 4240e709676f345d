#!/usr/bin/env bash
# The rolling upgrade test (cluster/tests/t90_rolling_upgrade.rs) with the next version's build:
# builds `ticketd` with feature `next-version` (binary version 3), keeps a copy of it, builds
# the test against the current version and runs it with TICKETD_NEXT_BIN pointing at the copy.
#
# The next version's build shares the build cache: only the workspace's own crates build again
# (their features differ), RocksDB and every other dependency are reused. scripts/test.sh (CI)
# builds the next version the same way before its test build and runs the test with the rest;
# without TICKETD_NEXT_BIN the test only says it skipped.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_build_deps
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cd "$ROOT"

next_dir="$CARGO_TARGET_DIR/next-version"
mkdir -p "$next_dir"
t0=$(date +%s)
log "building ticketd of the next version (feature next-version)"
cargo build --workspace --bin ticketd --features ticketd-cluster/next-version
# A copy, not the link cargo keeps: the current version's build below replaces that link.
cp -f "$CARGO_TARGET_DIR/debug/ticketd" "$next_dir/ticketd"
t1=$(date +%s)
log "next version built in $((t1 - t0)) s: $next_dir/ticketd"

log "building the current version and the test"
cargo build --workspace --bin ticketd --bin ticketctl
cargo test -p ticketd-cluster --test t90_rolling_upgrade --no-run
t2=$(date +%s)
log "current version and test built in $((t2 - t1)) s"

TICKETD_NEXT_BIN="$next_dir/ticketd" \
  cargo test -p ticketd-cluster --test t90_rolling_upgrade -- --nocapture
t3=$(date +%s)
log "test ran in $((t3 - t2)) s; $((t3 - t0)) s in all"
