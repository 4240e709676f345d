#!/usr/bin/env bash
# Shows that a replica which orders its work by a hash table's per-process order is caught, three
# ways, with the store feature `fault-hash-order` (a dt's call-off takes its open orders in the
# order table's hash order, which differs between processes, so replicas number the refund
# notices differently):
#   1. the two-seed determinism test fails (and passes without the feature);
#   2. a chaos run (sale workload, no faults) on a cluster of that build: its checker reports
#      `replicas-diverge`;
#   3. `ticketctl endpoint hashkv` on that same cluster, healed and still running, exits 7
#      (digests differ).
# Then the normal build's chaos run, for contrast: no anomaly, hashkv exits 0.
#
#   scripts/divergence-demo.sh            # about 8 minutes warm (two 60 s runs, one relink)
#   DEMO_DURATION=30 scripts/divergence-demo.sh
#
# Exits 0 only when all three catch the faulty build and the normal build passes all three.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_build_deps

DURATION="${DEMO_DURATION:-60}"
OUT="${DEMO_OUT:-/var/cache/ticketd/divergence-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
fail=0
verdict() { log "$1"; [ "$2" = ok ] || fail=1; }

log "1. two-seed determinism test (store only, its own target dir)"
STORE_TARGET=/var/cache/ticketd/target-store
if CARGO_TARGET_DIR=$STORE_TARGET cargo test -q -p ticketd-store --no-default-features \
    --test determinism >"$OUT/determinism.out" 2>&1; then
  verdict "   normal build: passes" ok
else
  tail -20 "$OUT/determinism.out" >&2; verdict "   normal build: FAILS (unexpected)" bad
fi
if CARGO_TARGET_DIR=$STORE_TARGET cargo test -q -p ticketd-store --no-default-features \
    --features fault-hash-order --test determinism >"$OUT/determinism-fault.out" 2>&1; then
  verdict "   hash-ordered build: passes (NOT caught)" bad
else
  grep -m3 -E "panicked|differ|assert" "$OUT/determinism-fault.out" >&2
  verdict "   hash-ordered build: fails (caught)" ok
fi

log "building the hash-ordered ticketd (only the workspace crates recompile)"
cargo build -p ticketd-cluster --bin ticketd --features ticketd-store/fault-hash-order \
  >"$OUT/build-fault.out" 2>&1 || { tail -20 "$OUT/build-fault.out" >&2; die "fault build failed"; }
cp "$CARGO_TARGET_DIR/debug/ticketd" "$OUT/ticketd-fault"
log "building the normal ticketd, ticketctl and ticketd-chaos"
cargo build --workspace --bins >"$OUT/build.out" 2>&1 || { tail -20 "$OUT/build.out" >&2; die "build failed"; }
TICKETCTL="$CARGO_TARGET_DIR/debug/ticketctl"
CHAOS="$CARGO_TARGET_DIR/debug/ticketd-chaos"
HASHKV="$TICKETCTL endpoint hashkv"

# run NAME BIN: a sale run without faults whose after-heal step is hashkv; prints the anomaly
# kinds and hashkv's exit status.
run() {
  local name="$1" bin="$2"
  timeout --signal=TERM --kill-after=20 300 "$CHAOS" run --name "$name" --workload sale \
    --seed "${DEMO_SEED:-7}" --nodes 3 --clients 6 --rate 80 --duration "$DURATION" --faults none \
    --net loopback --bin "$bin" --out "$OUT" --after-heal "$HASHKV" >"$OUT/$name.out" 2>&1
  local rc=$?
  local kinds
  kinds=$(grep -o '"kind": *"[a-z-]*"' "$OUT/$name.report.json" 2>/dev/null | sed 's/.*"\([a-z-]*\)"$/\1/' | sort | uniq -c | tr '\n' ' ')
  local hk
  hk=$(grep -o 'after-heal command exited -\?[0-9]*' "$OUT/$name.out" | awk '{print $4}')
  echo "$rc|${kinds:-none}|${hk:-?}"
}

log "2+3. chaos run on a cluster of the hash-ordered build (${DURATION}s), then hashkv on it"
IFS='|' read -r rc kinds hk <<<"$(run fault "$OUT/ticketd-fault")"
grep -E '^\| fault ' "$OUT/fault.out" >&2 || true
case "$kinds" in
  *replicas-diverge*) verdict "   chaos checker: replicas-diverge (caught); anomalies: $kinds" ok ;;
  *) verdict "   chaos checker: no replicas-diverge (NOT caught; exit $rc, anomalies: $kinds)" bad ;;
esac
if [ "$hk" = 7 ]; then verdict "   ticketctl endpoint hashkv: exit 7, digests differ (caught)" ok
else verdict "   ticketctl endpoint hashkv: exit $hk (NOT caught)" bad; fi

log "contrast: the same run on the normal build"
IFS='|' read -r rc kinds hk <<<"$(run normal "$CARGO_TARGET_DIR/debug/ticketd")"
grep -E '^\| normal ' "$OUT/normal.out" >&2 || true
if [ "$rc" = 0 ]; then verdict "   chaos checker: no anomaly" ok
else verdict "   chaos checker: exit $rc, anomalies: $kinds" bad; fi
if [ "$hk" = 0 ]; then verdict "   ticketctl endpoint hashkv: exit 0, digests equal" ok
else verdict "   ticketctl endpoint hashkv: exit $hk" bad; fi

log "outputs in $OUT"
[ $fail -eq 0 ] && log "divergence demo: every check as expected" || log "divergence demo: FAILED"
exit $fail
