#!/usr/bin/env bash
# Stops the local cluster started by cluster-up.sh (SIGTERM, then SIGKILL after 10 s).
#   scripts/cluster-down.sh [--wipe]   (--wipe also deletes its data)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DATA="${TICKETD_DATA:-$ROOT/.data/cluster}"

for pidf in "$DATA"/api.pid "$DATA"/paysim.pid "$DATA"/smssim.pid "$DATA"/smtp.pid "$DATA"/node*.pid; do
  [ -f "$pidf" ] || continue
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM; killing"; kill -KILL "$pid" || true; fi
  fi
  rm -f "$pidf"
  log "stopped $(basename "$pidf" .pid)"
done
if [ "${1:-}" = "--wipe" ]; then rm -rf "$DATA"; log "wiped $DATA"; fi
