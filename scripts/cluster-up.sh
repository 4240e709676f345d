#!/usr/bin/env bash
# Starts a local cluster of 3 or 5 ticketd nodes on loopback, data under .data/cluster/.
#   scripts/cluster-up.sh [3|5]
# Node i serves gRPC on 127.0.0.1:700i (mutual TLS) and Prometheus metrics on 127.0.0.1:910i.
# On first start it makes a development CA and certificates in .data/cluster/certs (nodes 1-5,
# api-dev for the HTTP API, admin-dev for ticketctl); later starts keep them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

n="${1:-3}"
case "$n" in 3|5) ;; *) die "cluster size must be 3 or 5, got $n" ;; esac
DATA="${TICKETD_DATA:-$ROOT/.data/cluster}"
mkdir -p "$DATA"

ensure_build_deps
build_bins
CERTS="$DATA/certs"
ensure_certs "$CERTS" 5

members=()
# The nodes share this machine's CPUs: each runs its async runtime on its share.
threads=$(shared_threads "$n")
for i in $(seq 1 "$n"); do
  pidf="$DATA/node$i.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    die "node $i already runs (pid $(cat "$pidf")); run scripts/cluster-down.sh first"
  fi
  tls_args "$CERTS" "node-$i"
  "$BIN_DIR/ticketd" node --id "$i" --data-dir "$DATA/node$i" "${TLS_ARGS[@]}" \
    --listen "127.0.0.1:700$i" --metrics-listen "127.0.0.1:910$i" --runtime-threads "$threads" \
    >>"$DATA/node$i.log" 2>&1 &
  echo $! >"$pidf"
  members+=("$i=127.0.0.1:700$i")
  log "node $i: pid $(cat "$pidf"), gRPC 127.0.0.1:700$i, metrics http://127.0.0.1:910$i/metrics, log $DATA/node$i.log"
done

endpoints=""
for i in $(seq 1 "$n"); do endpoints="$endpoints${endpoints:+,}127.0.0.1:700$i"; done
tls_args "$CERTS" admin-dev
ADMIN_TLS=("${TLS_ARGS[@]}")
ctl() { "$BIN_DIR/ticketctl" --endpoints "$endpoints" "${ADMIN_TLS[@]}" "$@"; }

# Initialize once (a restarted cluster keeps its membership on disk); bounded retries while
# the nodes bind their ports.
if [ ! -f "$DATA/initialized" ]; then
  for _ in $(seq 1 50); do
    if ctl cluster init --members "$(IFS=,; echo "${members[*]}")" >"$DATA/init.out" 2>&1; then
      touch "$DATA/initialized"; break
    fi
    sleep 0.2
  done
  [ -f "$DATA/initialized" ] || die "cluster init failed; see $DATA/node1.log"
fi
for _ in $(seq 1 100); do
  if ctl endpoint health >/dev/null 2>&1; then break; fi
  sleep 0.2
done
ctl endpoint status
echo "$endpoints" >"$DATA/endpoints"
log "cluster up; ticketctl as the development operator:"
log "  export TICKETCTL_ENDPOINTS=$endpoints TICKETCTL_CACERT=$CERTS/ca.pem TICKETCTL_CERT=$CERTS/admin-dev.pem TICKETCTL_KEY=$CERTS/admin-dev-key.pem"
log "  $BIN_DIR/ticketctl member list"
