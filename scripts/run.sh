#!/usr/bin/env bash
# Runs the system locally: a 3-node ticketd cluster on loopback with embedded defaults.
# Stop it with scripts/cluster-down.sh (add --wipe to delete its data).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/cluster-up.sh" 3

DATA="${TICKETD_DATA:-$ROOT/.data/cluster}"
endpoints="$(cat "$DATA/endpoints")"
if [ -f "$DATA/api.pid" ] && kill -0 "$(cat "$DATA/api.pid")" 2>/dev/null; then
  die "the API already runs (pid $(cat "$DATA/api.pid")); run scripts/cluster-down.sh first"
fi
# A fixed development key, so tokens survive an API restart; production sets its own.
"$BIN_DIR/ticketd" api --listen 127.0.0.1:8080 --endpoints "$endpoints" \
  --token-key "${TICKETD_API_TOKEN_KEY:-development-only-token-key-0123456789abcdef}" \
  >>"$DATA/api.log" 2>&1 &
echo $! >"$DATA/api.pid"
for _ in $(seq 1 100); do
  if curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS http://127.0.0.1:8080/healthz >/dev/null || die "the API did not come up; see $DATA/api.log"
log "API: http://127.0.0.1:8080 (OpenAPI at /openapi.json, metrics at /metrics), log $DATA/api.log"
log "stop everything with scripts/cluster-down.sh (add --wipe to delete the data)"
