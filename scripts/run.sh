#!/usr/bin/env bash
# Runs the system locally: a 3-node ticketd cluster on loopback with embedded defaults, the
# payment provider simulator and the SMS simulator (`ticketd-sim`, the test kit's), an SMTP server that prints what it receives
# (Debian's python3-aiosmtpd), the HTTP API on 127.0.0.1:8080, and the demo data set (venues with
# a 50,400-seat stadium, events in several cities, dts on sale, demo users). The leader's
# background worker expires holds, reconciles payments and sends notifications (mail lands in
# .data/cluster/mail.log).
# Stop it with scripts/cluster-down.sh (add --wipe to delete its data).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DATA="${TICKETD_DATA:-$ROOT/.data/cluster}"
mkdir -p "$DATA"
ensure_build_deps
build_bins
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then ensure_pkg /nonexistent-aiosmtpd python3-aiosmtpd; fi
running() { [ -f "$DATA/$1.pid" ] && kill -0 "$(cat "$DATA/$1.pid")" 2>/dev/null; }
# The payment provider simulator (Stripe-shaped; declines pm_card_declined).
if ! running paysim; then
  "$BIN_DIR/ticketd-sim" pay --listen 127.0.0.1:8091 --state-file "$DATA/paysim.json" >>"$DATA/paysim.log" 2>&1 &
  echo $! >"$DATA/paysim.pid"
fi
# The SMS provider simulator (GET http://127.0.0.1:8092/v1/messages lists what it received).
if ! running smssim; then
  "$BIN_DIR/ticketd-sim" sms --listen 127.0.0.1:8092 >>"$DATA/smssim.log" 2>&1 &
  echo $! >"$DATA/smssim.pid"
fi
# An SMTP server on 127.0.0.1:2525 that prints every message it receives.
if ! running smtp; then
  PYTHONUNBUFFERED=1 /usr/bin/python3 -m aiosmtpd -n -c aiosmtpd.handlers.Debugging -l 127.0.0.1:2525 \
    >>"$DATA/mail.log" 2>&1 &
  echo $! >"$DATA/smtp.pid"
fi
# The nodes' background worker (read by ticketd node from TICKETD_* variables).
export TICKETD_PAYMENTS=127.0.0.1:8091 TICKETD_SMS=127.0.0.1:8092
export TICKETD_SMTP_HOST=127.0.0.1 TICKETD_SMTP_PORT=2525 TICKETD_SMTP_FROM=tickets@ticketd.localhost
"$ROOT/scripts/cluster-up.sh" 3

endpoints="$(cat "$DATA/endpoints")"
if [ -f "$DATA/api.pid" ] && kill -0 "$(cat "$DATA/api.pid")" 2>/dev/null; then
  die "the API already runs (pid $(cat "$DATA/api.pid")); run scripts/cluster-down.sh first"
fi
# The API's certificate (cluster-up.sh made it with the nodes').
tls_args "$DATA/certs" api-dev
API_TLS=("${TLS_ARGS[@]}")
# The demo data set, written through the cluster with fixed idempotency keys (twice is a no-op).
"$BIN_DIR/ticketd" seed --demo --endpoints "$endpoints" "${API_TLS[@]}" >>"$DATA/seed.log" 2>&1 \
  || die "seeding the demo data failed; see $DATA/seed.log"
log "demo data written (see $DATA/seed.log)"
# A fixed development root key, so tokens and ids survive an API restart; production sets its own
# (every other key of the API derives from it).
"$BIN_DIR/ticketd" api --listen 127.0.0.1:8080 --metrics-listen 127.0.0.1:9180 --endpoints "$endpoints" "${API_TLS[@]}" --runtime-threads "$(shared_threads 3)" \
  --payments 127.0.0.1:8091 \
  --root-key "${TICKETD_API_ROOT_KEY:-0000000000000000000000000000000000000000000000000000000000000d0e}" \
  >>"$DATA/api.log" 2>&1 &
echo $! >"$DATA/api.pid"
for _ in $(seq 1 100); do
  if curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS http://127.0.0.1:8080/healthz >/dev/null || die "the API did not come up; see $DATA/api.log"
log "API: http://127.0.0.1:8080 (OpenAPI at /openapi.json; metrics apart, at http://127.0.0.1:9180/metrics), log $DATA/api.log"
log "try:  curl -s 'http://127.0.0.1:8080/v1/events?lat=59.91&lon=10.75&radius_km=50'"
log "      curl -s 'http://127.0.0.1:8080/v1/events?q=aurora'"
tls_args "$DATA/certs" admin-dev
log "the whole flow with curl: docs/API.md; heal payments now: $BIN_DIR/ticketctl --endpoints $endpoints ${TLS_ARGS[*]} reconcile"
log "mail: $DATA/mail.log; SMS: curl -s http://127.0.0.1:8092/v1/messages"
log "stop everything with scripts/cluster-down.sh (add --wipe to delete the data)"
