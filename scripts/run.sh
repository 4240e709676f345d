#!/usr/bin/env bash
# Runs the system locally: a 3-node ticketd cluster on loopback with embedded defaults.
# Stop it with scripts/cluster-down.sh (add --wipe to delete its data).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/cluster-up.sh" 3
