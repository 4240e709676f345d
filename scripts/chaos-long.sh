#!/usr/bin/env bash
# The long chaos run: every fault kind combined on a 5-node cluster for 10 minutes (a fault every
# few seconds), then heal, final reads and every checker; then the full-stack run
# (cluster/tests/t84_fullstack_chaos.rs: nodes with their worker, two API processes, the payment
# and SMS simulators, a real SMTP server, provider faults, API crashes per saga step, node and
# leader kills) for FULLSTACK_SECONDS (600) under the same seed, judged by the money and
# messages checkers. Prints the summary table; exits non-zero on any anomaly or if a run did
# not complete.
#
#   scripts/chaos-long.sh
#   CHAOS_SEED=1234 CHAOS_DURATION=600 CHAOS_NODES=5 scripts/chaos-long.sh
#   CHAOS_WORKLOAD=register scripts/chaos-long.sh   # venue registers instead of the seat sale
#   FULLSTACK_SECONDS=0 scripts/chaos-long.sh       # without the full-stack run
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

try_pkg() {
  local probe="$1" pkg="$2"
  if [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then log "WARNING: $pkg missing and not root: faults needing it are skipped"; return 1; fi
  log "installing $pkg"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }; then
    log "WARNING: apt-get install $pkg FAILED: faults needing it are skipped"
    return 1
  fi
}

ensure_build_deps
try_pkg iptables iptables
try_pkg /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 faketime

log "building ticketd and ticketd-chaos"
cargo build -p ticketd-cluster --bins >/dev/null 2>&1 || cargo build -p ticketd-cluster --bins || die "build of ticketd failed"
cargo build --workspace --bin ticketd-chaos || die "build of ticketd-chaos failed"
CHAOS="$BIN_DIR/ticketd-chaos"
export TICKETD_BIN="${TICKETD_BIN:-$BIN_DIR/ticketd}"

SEED="${CHAOS_SEED:-$(( $(date +%s) % 1000000 ))}"
DURATION="${CHAOS_DURATION:-600}"
NODES="${CHAOS_NODES:-5}"
WORKLOAD="${CHAOS_WORKLOAD:-sale}"
OUT="${CHAOS_OUT:-/var/cache/ticketd/chaos/long-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
log "long chaos run: seed $SEED, $NODES nodes, ${DURATION}s, all faults, workload $WORKLOAD, output in $OUT"
"$CHAOS" cleanup >/dev/null 2>&1 || true

timeout --signal=TERM --kill-after=30 $((DURATION + 600)) "$CHAOS" run --name long --workload "$WORKLOAD" --seed "$SEED" \
    --nodes "$NODES" --clients 8 --rate 120 --duration "$DURATION" --faults all \
    --fault-interval 4 --fault-hold 8 --out "$OUT" 2>&1 | tee "$OUT/long.out"
rc=${PIPESTATUS[0]}
grep -h "NO NETWORK NAMESPACES" "$OUT/long.out" >&2 || true
if [ ! -f "$OUT/long.summary.json" ]; then
  log "the run did not complete (exit $rc)"
  exit 2
fi
echo
echo "## long chaos run, seed $SEED"
echo
"$CHAOS" table "$OUT/long.summary.json"
table_rc=$?
[ $table_rc -eq 0 ] || { log "anomalies found: history in $OUT"; exit 1; }
log "no anomalies; history in $OUT"

FULLSTACK_SECONDS="${FULLSTACK_SECONDS:-600}"
if [ "$FULLSTACK_SECONDS" -gt 0 ]; then
  if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then try_pkg /nonexistent-aiosmtpd python3-aiosmtpd; fi
  log "full-stack run: seed $SEED, ${FULLSTACK_SECONDS}s"
  TICKETD_FULLSTACK_SECONDS="$FULLSTACK_SECONDS" TICKETD_FULLSTACK_SEED="$SEED" \
    cargo nextest run --workspace -E 'binary(t84_fullstack_chaos)' --no-capture 2>&1 \
    | tee "$OUT/fullstack.out" | grep -E '^(full-stack|seed|money|messages)|anomal|panicked'
  [ "${PIPESTATUS[0]}" -eq 0 ] || { log "the full-stack run failed: $OUT/fullstack.out"; exit 1; }
  log "full-stack run: no money or message anomaly"
fi
