#!/usr/bin/env bash
# The short chaos suite: every fault kind in one of 11 bounded runs (about 60 s of workload each,
# about 14 minutes in all), each history checked; prints the summary table and exits non-zero on any
# anomaly or on any run that did not complete.
#
#   scripts/chaos-short.sh                 # seeds from the clock (printed)
#   CHAOS_SEED=1234 scripts/chaos-short.sh # the same fault schedules again
#   CHAOS_DURATION=20 scripts/chaos-short.sh
#   CHAOS_WORKLOAD=register scripts/chaos-short.sh   # every run on venue registers (default: each
#                                                    # run's own; membership runs on registers)
#
# Network faults need root, `ip` and iptables (installed here when missing); without them the
# runs fall back to loopback and mark partition faults as skipped, and the output says so.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# try_pkg PROBE PACKAGE: like ensure_pkg, but a failure is reported and the suite goes on.
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
DURATION="${CHAOS_DURATION:-60}"
OUT="${CHAOS_OUT:-/var/cache/ticketd/chaos/short-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
log "short chaos suite: base seed $SEED, ${DURATION}s per run, output in $OUT"
"$CHAOS" cleanup >/dev/null 2>&1 || true

# One line per run: name nodes workload faults (the suite is defined in jepsen-tests/chaos/src/runner.rs).
mapfile -t RUNS < <("$CHAOS" suite) || die "ticketd-chaos suite failed"
[ ${#RUNS[@]} -gt 0 ] || die "the suite is empty"

failed_runs=()
i=0
for run in "${RUNS[@]}"; do
  read -r name nodes run_workload faults <<<"$run"
  workload="${CHAOS_WORKLOAD:-$run_workload}"
  seed=$((SEED + i)); i=$((i + 1))
  log "run $name: seed $seed nodes $nodes workload $workload faults $faults"
  # Bounded: the workload, final reads and checks of one run take well under 5 minutes.
  timeout --signal=TERM --kill-after=20 300 "$CHAOS" run --name "$name" --workload "$workload" --seed "$seed" --nodes "$nodes" \
      --clients 6 --rate 80 --duration "$DURATION" --faults "$faults" \
      --fault-interval 2 --fault-hold 4 --out "$OUT" >"$OUT/$name.out" 2>&1
  rc=$?
  case $rc in
    0) log "run $name: no anomaly" ;;
    1) if [ -f "$OUT/$name.summary.json" ]; then log "run $name: ANOMALIES (see $OUT/$name.report.json)";
       else log "run $name: FAILED to complete (exit 1)"; tail -5 "$OUT/$name.out" >&2; failed_runs+=("$name"); fi ;;
    124) log "run $name: TIMED OUT"; failed_runs+=("$name") ;;
    *) log "run $name: FAILED (exit $rc)"; tail -5 "$OUT/$name.out" >&2; failed_runs+=("$name") ;;
  esac
  grep -h "NO NETWORK NAMESPACES" "$OUT/$name.out" >&2 || true
done

echo
echo "## short chaos suite, base seed $SEED"
echo
"$CHAOS" table "$OUT"/*.summary.json
table_rc=$?
echo
if [ ${#failed_runs[@]} -gt 0 ]; then
  log "runs that did not complete: ${failed_runs[*]}"
  exit 2
fi
[ $table_rc -eq 0 ] || { log "anomalies found: histories in $OUT"; exit 1; }
log "no anomalies; histories in $OUT"
