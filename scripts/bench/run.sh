#!/usr/bin/env bash
# The benchmark (W1-W8): ticketd (3 nodes + `ticketd api`) side by side with PostgreSQL 15 and a 3-member
# etcd 3.4, each behind the same HTTP shape (scripts/bench/src/bin/ticketd-peer.rs), driven by
# ticketd-load. Loopback only; durability on everywhere (ticketd fsyncs its log, PostgreSQL
# synchronous_commit=on, etcd fsyncs its WAL).
#
#   scripts/bench/run.sh [--quick] [--out docs/BENCHMARKS.md]
#
# Builds ticketd in the release profile (about 40 minutes cold on 2 cores), unless
# TICKETD_BENCH_BIN names a directory of prebuilt binaries (ticketd, ticketctl, ticketd-load,
# ticketd-peer, ticketd-sim) to measure instead; TICKETD_BENCH_PROFILE labels them in the report.
# TICKETD_BENCH_NODE_BIN, a `ticketd` binary, runs the nodes and the API instead of
# $TICKETD_BENCH_BIN/ticketd (an older build, for before/after figures: the load generator,
# the peers and the seeding client stay this build's); TICKETD_BENCH_NOTE goes into the report.
#
# Order: a flush-latency calibration of the disk and an idle calibration of memory; then, for
# each repetition (3), each workload interleaved over the three systems; medians of the three.
# Each run gets a fresh dt (50,400 seats laid out as the demo stadium: gold = 2,100 seats,
# silver = 48,300), so runs never share sold-out seats or per-user caps. Installs PostgreSQL
# and etcd-server (Debian) when missing, starts them under /var/cache/ticketd/bench, and stops
# everything it started on exit.
# Writes docs/BENCHMARKS.md and docs/benchmarks.json (raw numbers of every run).
# Bounded: each run lasts a fixed number of seconds and the whole script gives up past a deadline.
set -euo pipefail
# W2's top level opens 1,024 connections to each system at once.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

QUICK=0
ONLY=""
OUT_MD="$ROOT/docs/BENCHMARKS.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT_MD="$2"; shift ;;
    --only) ONLY=",$2,"; shift ;;
    *) die "usage: scripts/bench/run.sh [--quick] [--only W1,W2,W2open,W3,W4,W5,W6,W7,W8,W10] [--out FILE]" ;;
  esac
  shift
done
OUT_JSON="$(dirname "$OUT_MD")/benchmarks.json"

BENCH="${TICKETD_BENCH_DIR:-/var/cache/ticketd/bench}"
RUN="$BENCH/run-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$RUN"
REPS=3
if [ $QUICK -eq 1 ]; then SECS=4; CONC=(16 64 256 1024); LIMIT_S=1200; W6_RATES=(100 400 1600)
else SECS=8; CONC=(4 16 64 256 1024); LIMIT_S=2700; W6_RATES=(50 100 200 400 800 1600); fi
# W4 and W6 go through endpoints whose holds last HOLD_TTL_S (a second ticketd API, second
# peers), paid through ticketd's payment simulator; W6's users are served while the p99 of every
# request of their visits stays within W6_P99_MS and at most 1% of them fail.
HOLD_TTL_S=5
# The other workloads' holds last 30 minutes (the longest a hold may), longer than the run: a
# storm's holds expiring all at once (about 20,000 of them within 2 s, 10 minutes after a W2 run)
# would otherwise fall on whatever workload runs then, on each system at a different moment.
LONG_TTL_S=1800
W6_P99_MS=250
# Load-test buyers on ticketd (the store caps seats per user per dt at 10): users buyer-1..N,
# created by `ticketd seed --buyers`, tokens signed by ticketd-load with the API's key.
USERS=20000
DEADLINE=$(( $(date +%s) + LIMIT_S ))
want() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; } # WORKLOAD: selected by --only?
past_deadline() { [ "$(date +%s)" -ge "$DEADLINE" ]; }

PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=5433
PG_DSN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=bench"
ETCD_CLIENT=(2379 22379 32379)
ETCD_PEER=(2380 22380 32380)
API=http://127.0.0.1:8183
API_METRICS=http://127.0.0.1:9183
PEER_PG=http://127.0.0.1:8181
PEER_ETCD=http://127.0.0.1:8182
API_SHORT=http://127.0.0.1:8184
API_SHORT_METRICS=http://127.0.0.1:9184
PEER_PG_SHORT=http://127.0.0.1:8185
PEER_ETCD_SHORT=http://127.0.0.1:8186
PAYSIM=127.0.0.1:8190
EVENT=stadium-tour
TD_DATA="$BENCH/ticketd"
# cluster-up.sh makes the cluster's CA and certificates here (the APIs present api-dev, ticketctl
# admin-dev): every ticketd process measured runs with mutual TLS.
TD_CERTS="$TD_DATA/certs"
# The APIs' root key; ticketd-load signs the buyers' tokens with the tokens' key derived from it.
ROOT_KEY=00000000000000000000000000000000000000000000000000000000000be0c4
# Every server process here (ticketd's nodes and APIs, the peers' HTTP services) runs its async
# runtime on the same share of the CPUs: the one scripts/cluster-up.sh gives each of 3 nodes.
RT_THREADS=$(shared_threads 3)

# ---- what this script started, stopped on exit ----
PIDS=()
PG_STARTED=0
TD_STARTED=0
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  if [ $PG_STARTED -eq 1 ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH/pg/data" -m fast -w stop >/dev/null 2>&1
  fi
  if [ $TD_STARTED -eq 1 ]; then
    TICKETD_DATA="$TD_DATA" "$ROOT/scripts/cluster-down.sh" --wipe >/dev/null 2>&1
  fi
  log "stopped what the benchmark started (raw output: $RUN)"
}
trap cleanup EXIT

wait_http() { # URL: bounded wait for a 2xx
  for _ in $(seq 1 150); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

# ---- build: the release profile (or prebuilt binaries) ----
if [ -n "${TICKETD_BENCH_BIN:-}" ]; then
  BIN="$TICKETD_BENCH_BIN"
  PROFILE="${TICKETD_BENCH_PROFILE:-prebuilt}"
  for b in ticketd ticketctl ticketd-load ticketd-peer ticketd-sim; do
    [ -x "$BIN/$b" ] || die "TICKETD_BENCH_BIN=$BIN has no $b"
  done
else
  ensure_build_deps
  PROFILE=release
  log "building the release profile (about 40 minutes cold on 2 cores)"
  (cargo build --release --workspace --bin ticketd --bin ticketctl --bin ticketd-load --bin ticketd-peer --bin ticketd-sim) \
    || die "release build failed"
  BIN="$CARGO_TARGET_DIR/release"
fi
NODE_BIN="${TICKETD_BENCH_NODE_BIN:-$BIN/ticketd}"
[ -x "$NODE_BIN" ] || die "no ticketd binary at $NODE_BIN"
# cluster-up.sh starts the nodes from these binaries too (ticketd from NODE_BIN).
TD_BIN_DIR="$BENCH/bin"
mkdir -p "$TD_BIN_DIR"
ln -sf "$NODE_BIN" "$TD_BIN_DIR/ticketd"
ln -sf "$BIN/ticketctl" "$TD_BIN_DIR/ticketctl"
export TICKETD_BIN_DIR="$TD_BIN_DIR"
log "measuring the $PROFILE build in $BIN"

# ---- calibration: the disk's flush latency, where the data lives ----
log "flush calibration (write 4 KiB + fdatasync, 300 times)"
CAL=$(/usr/bin/python3 - "$BENCH" <<'EOF'
import os, sys, time, json, statistics
path = os.path.join(sys.argv[1], "flush.calib")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"x" * 4096
lat = []
for i in range(300):
    t = time.perf_counter()
    os.pwrite(fd, buf, (i % 64) * 4096)
    os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(path)
lat.sort()
print(json.dumps({"n": len(lat), "p50_ms": round(lat[len(lat)//2], 3),
                  "p99_ms": round(lat[int(len(lat)*0.99)], 3), "max_ms": round(lat[-1], 3),
                  "mean_ms": round(statistics.mean(lat), 3)}))
EOF
)
log "flush: $CAL"

# ---- calibration: how much slower memory is right after the machine idled ----
# Every open-loop run starts after the others' runs left this system idle for seconds. On this
# VM a strided pass over 32 MiB is several times slower on its first go after 2 s of idling
# than while busy, for any process: the bench reports it next to the runs it explains.
log "idle calibration (strided pass over 32 MiB: busy, and first after 2 s idle, 5 times)"
IDLE_CAL=$(/usr/bin/python3 - <<'EOF'
import json, statistics, time
buf = bytearray(range(256)) * (4 * 32 * 1024)
def one():
    t = time.perf_counter(); buf[::64]; return (time.perf_counter() - t) * 1000
for _ in range(20): one()
busy = []
for _ in range(30):
    busy.append(one()); time.sleep(0.005)
idle = []
for _ in range(5):
    time.sleep(2); idle.append(one())
b, i = statistics.median(busy), statistics.median(idle)
print(json.dumps({"mib": 32, "busy_ms": round(b, 3), "after_idle_ms": round(i, 3),
                  "after_idle_each_ms": [round(x, 3) for x in idle], "ratio": round(i / b, 2)}))
EOF
) || IDLE_CAL=""
[ -n "$IDLE_CAL" ] || { log "idle calibration failed: reported as null"; IDLE_CAL=null; }
log "idle: $IDLE_CAL"

# ---- PostgreSQL 15 ----
ensure_pkg "$PG_BIN/postgres" postgresql-15
if ! "$PG_BIN/pg_isready" -h 127.0.0.1 -p $PG_PORT -q 2>/dev/null; then
  mkdir -p "$BENCH/pg"; chown postgres:postgres "$BENCH/pg"
  if [ ! -f "$BENCH/pg/data/PG_VERSION" ]; then
    runuser -u postgres -- "$PG_BIN/initdb" -D "$BENCH/pg/data" -U postgres --auth=trust -E UTF8 \
      >"$RUN/initdb.log" 2>&1 || die "initdb failed; see $RUN/initdb.log"
  fi
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH/pg/data" -l "$BENCH/pg/log" -w -t 60 \
    -o "-c port=$PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$BENCH/pg -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=100 -c shared_buffers=256MB" \
    start >/dev/null || die "PostgreSQL did not start; see $BENCH/pg/log"
  PG_STARTED=1
fi
psql_b() { "$PG_BIN/psql" -h 127.0.0.1 -p $PG_PORT -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql_b -d postgres -c 'DROP DATABASE IF EXISTS bench' -c 'CREATE DATABASE bench' >/dev/null
psql_b -d bench -f scripts/bench/pg/schema.sql >/dev/null 2>&1 || die "schema failed"
PG_VERSION=$(psql_b -d bench -At -c 'SHOW server_version')

# ---- etcd 3.4, 3 members ----
ensure_pkg etcd etcd-server
cluster_spec=""
for i in 0 1 2; do cluster_spec="$cluster_spec${cluster_spec:+,}e$i=http://127.0.0.1:${ETCD_PEER[$i]}"; done
for i in 0 1 2; do
  rm -rf "$BENCH/etcd/e$i"; mkdir -p "$BENCH/etcd"
  etcd --name "e$i" --data-dir "$BENCH/etcd/e$i" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
    --initial-cluster "$cluster_spec" --initial-cluster-state new --initial-cluster-token "bench-$$" \
    >"$RUN/etcd$i.log" 2>&1 &
  PIDS+=($!)
done
ETCD_EPS=""
for i in 0 1 2; do ETCD_EPS="$ETCD_EPS${ETCD_EPS:+,}http://127.0.0.1:${ETCD_CLIENT[$i]}"; done
for _ in $(seq 1 100); do
  curl -fsS -X POST "http://127.0.0.1:${ETCD_CLIENT[0]}/v3/kv/put" -d '{"key":"YmVuY2g=","value":"MQ=="}' >/dev/null 2>&1 && break
  sleep 0.2
done
ETCD_VERSION=$(etcd --version | awk 'NR == 1 {print $3}')

# ---- the payment simulator (W4, W6) and the peers ----
ETCD_PIDS=("${PIDS[0]}" "${PIDS[1]}" "${PIDS[2]}")
"$BIN/ticketd-sim" pay --listen "$PAYSIM" >"$RUN/paysim.log" 2>&1 &
PIDS+=($!)
wait_http "http://$PAYSIM/healthz" || die "the payment simulator did not come up; see $RUN/paysim.log"
"$BIN/ticketd-peer" --listen 127.0.0.1:8181 --runtime-threads "$RT_THREADS" --ttl-s "$LONG_TTL_S" pg --dsn "$PG_DSN" >"$RUN/peer-pg.log" 2>&1 &
PEER_PG_PID=$!; PIDS+=($!)
"$BIN/ticketd-peer" --listen 127.0.0.1:8182 --runtime-threads "$RT_THREADS" --ttl-s "$LONG_TTL_S" etcd --endpoints "$ETCD_EPS" >"$RUN/peer-etcd.log" 2>&1 &
PEER_ETCD_PID=$!; PIDS+=($!)
"$BIN/ticketd-peer" --listen 127.0.0.1:8185 --runtime-threads "$RT_THREADS" --ttl-s "$HOLD_TTL_S" --payments "$PAYSIM" pg --dsn "$PG_DSN" >"$RUN/peer-pg-short.log" 2>&1 &
PEER_PG_SHORT_PID=$!; PIDS+=($!)
"$BIN/ticketd-peer" --listen 127.0.0.1:8186 --runtime-threads "$RT_THREADS" --ttl-s "$HOLD_TTL_S" --payments "$PAYSIM" etcd --endpoints "$ETCD_EPS" >"$RUN/peer-etcd-short.log" 2>&1 &
PEER_ETCD_SHORT_PID=$!; PIDS+=($!)
wait_http "$PEER_PG/healthz" || die "the pg peer did not come up; see $RUN/peer-pg.log"
wait_http "$PEER_ETCD/healthz" || die "the etcd peer did not come up; see $RUN/peer-etcd.log"
wait_http "$PEER_PG_SHORT/healthz" || die "the short-TTL pg peer did not come up; see $RUN/peer-pg-short.log"
wait_http "$PEER_ETCD_SHORT/healthz" || die "the short-TTL etcd peer did not come up; see $RUN/peer-etcd-short.log"

# ---- ticketd: 3 nodes (5 for W8), the demo data, the API with the hold rate limits lifted ----
API_PID=""
API_SHORT_PID=""
td_start() { # N: a fresh N-node cluster, seeded, and the API in front of it (and the short-TTL one)
  local n="$1"
  TD_N="$n"
  if [ -n "$API_PID" ]; then kill -TERM "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null || true; fi
  if [ -n "$API_SHORT_PID" ]; then kill -TERM "$API_SHORT_PID" 2>/dev/null; wait "$API_SHORT_PID" 2>/dev/null || true; fi
  TICKETD_DATA="$TD_DATA" "$ROOT/scripts/cluster-down.sh" --wipe >/dev/null 2>&1 || true
  TD_STARTED=1
  TICKETD_DATA="$TD_DATA" "$ROOT/scripts/cluster-up.sh" "$n" >"$RUN/cluster-up-$n.log" 2>&1 || die "cluster-up failed; see $RUN/cluster-up-$n.log"
  TD_EPS=$(cat "$TD_DATA/endpoints")
  tls_args "$TD_CERTS" api-dev
  local api_tls=("${TLS_ARGS[@]}")
  "$BIN/ticketd" seed --demo --endpoints "$TD_EPS" "${api_tls[@]}" --buyers "$USERS" >"$RUN/seed-$n.log" 2>&1 || die "seed failed; see $RUN/seed-$n.log"
  "$NODE_BIN" api --listen 127.0.0.1:8183 --metrics-listen 127.0.0.1:9183 --endpoints "$TD_EPS" "${api_tls[@]}" \
    --root-key "$ROOT_KEY" --runtime-threads "$RT_THREADS" \
    --holds-per-user-per-minute 100000000 --holds-per-ip-per-minute 100000000 \
    --hold-ttl-s "$LONG_TTL_S" >>"$RUN/api.log" 2>&1 &
  API_PID=$!
  PIDS+=($!)
  "$NODE_BIN" api --listen 127.0.0.1:8184 --metrics-listen 127.0.0.1:9184 --endpoints "$TD_EPS" "${api_tls[@]}" \
    --root-key "$ROOT_KEY" --runtime-threads "$RT_THREADS" \
    --holds-per-user-per-minute 100000000 --holds-per-ip-per-minute 100000000 \
    --hold-ttl-s "$HOLD_TTL_S" --payments "$PAYSIM" >>"$RUN/api-short.log" 2>&1 &
  API_SHORT_PID=$!
  PIDS+=($!)
  wait_http "$API/healthz" || die "the API did not come up; see $RUN/api.log"
  wait_http "$API_SHORT/healthz" || die "the short-TTL API did not come up; see $RUN/api-short.log"
  SELLER=$(curl -s -X POST "$API/v1/sessions" -H 'content-type: application/json' -H 'idempotency-key: bench-seller' \
    -d '{"email":"seller2@example.org","password":"demo-password"}' | jq -r .token)
}
td_start 3
SECTIONS=$(/usr/bin/python3 -c 'print(",".join("\"S%02d\"" % i for i in range(1, 24)))')

# The benchmark dts' times (RFC 3339, as the API takes them): they start (and their sale closes)
# at 2030-01-01T00:00:00Z; their sale opens at the Unix epoch.
DT_STARTS_AT=$(date -u -d @1893456000 +%Y-%m-%dT%H:%M:%SZ)
DT_SALE_STARTS_AT=$(date -u -d @0 +%Y-%m-%dT%H:%M:%SZ)

# new_dt SYSTEM NAME: a fresh dt on SYSTEM, on sale; prints its id (ticketd answers 201 with the
# Dt resource, `status` "published").
new_dt() {
  local sys="$1" name="$2"
  case "$sys" in
    ticketd)
      curl -s -X POST "$API/v1/events/$EVENT/dts" -H "authorization: Bearer $SELLER" -H 'content-type: application/json' \
        -H "idempotency-key: bench-dt-$name" \
        -d "{\"venue_id\":\"ullevaal\",\"starts_at\":\"$DT_STARTS_AT\",\"time_zone\":\"Europe/Oslo\",\"tiers\":[{\"tier_id\":\"gold\",\"name\":\"Gold\",\"price_minor\":12000,\"currency\":\"EUR\",\"sections\":[\"S00\"],\"seat_ranges\":[],\"ga_areas\":[]},{\"tier_id\":\"silver\",\"name\":\"Silver\",\"price_minor\":6000,\"currency\":\"EUR\",\"sections\":[$SECTIONS],\"seat_ranges\":[],\"ga_areas\":[]}],\"sale_starts_at\":\"$DT_SALE_STARTS_AT\",\"sale_ends_at\":\"$DT_STARTS_AT\",\"publish\":true}" \
        | jq -r 'select(.status == "published") | .dt_id // empty' ;;
    pg) psql_b -d bench -v dt="$name" -f scripts/bench/pg/seed.sql >/dev/null && echo "$name" ;;
    etcd) echo "$name" ;; # a seat is free while its key is absent
  esac
}
base_url() { case "$1" in ticketd) echo "$API" ;; pg) echo "$PEER_PG" ;; etcd) echo "$PEER_ETCD" ;; esac; }
short_url() { case "$1" in ticketd) echo "$API_SHORT" ;; pg) echo "$PEER_PG_SHORT" ;; etcd) echo "$PEER_ETCD_SHORT" ;; esac; }

# fsyncs: the Raft log fsyncs of the three ticketd nodes so far (from their Prometheus metrics).
fsyncs() {
  local i
  for i in $(seq 1 "$TD_N"); do curl -s -m 5 "http://127.0.0.1:910$i/metrics" || true; done \
    | awk '/^ticketd_raft_fsyncs_total/ {s += $NF} END {printf "%d\n", s}'
}
# CPU of each process of a system over a run: "role pid" lines, snapshots of their CPU ticks
# (user + system, /proc/PID/stat), and the per-role seconds between two snapshots as JSON.
HZ=$(getconf CLK_TCK)
procs() { # SYSTEM
  local i p
  case "$1" in
    ticketd)
      for i in $(seq 1 "$TD_N"); do echo "node$i $(cat "$TD_DATA/node$i.pid" 2>/dev/null)"; done
      echo "api $API_PID"; echo "api $API_SHORT_PID" ;;
    pg)
      for p in $(pgrep -x postgres); do echo "postgres $p"; done
      echo "peer $PEER_PG_PID"; echo "peer $PEER_PG_SHORT_PID" ;;
    etcd)
      for i in 0 1 2; do echo "etcd$i ${ETCD_PIDS[$i]}"; done
      echo "peer $PEER_ETCD_PID"; echo "peer $PEER_ETCD_SHORT_PID" ;;
  esac
}
cpu_snap() { # SYSTEM FILE
  local role pid t
  : >"$2"
  procs "$1" | while read -r role pid; do
    [ -n "$pid" ] || continue
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && echo "$role $pid $t" >>"$2"
  done
  return 0
}
cpu_json() { # BEFORE AFTER: {"role": cpu seconds, ...}
  awk -v hz="$HZ" 'NR == FNR { b[$2] = $3; next }
    { d[$1] += $3 - (($2 in b) ? b[$2] : 0) }
    END { printf "{"; sep = ""; for (r in d) { printf "%s\"%s\":%.2f", sep, r, d[r] / hz; sep = "," }; printf "}" }' "$1" "$2"
}
# Stage latencies of ticketd's writes, from the histograms of the nodes and both APIs: the sum and
# count of each, summed over the processes, and each stage's mean over a run in ms as JSON.
# api_hold: the API's hold route; client_batch_wait/call: the API's queue for a WriteBatch call
# and the call; write_batch: the leader's handling of one call; proposal_commit: one entry from
# proposal to applied; raft_append/fsync, sm_apply: every node's log appends, fsyncs and applies.
stages_snap() { # FILE
  local i u
  {
    for i in $(seq 1 "$TD_N"); do curl -s -m 5 "http://127.0.0.1:910$i/metrics" || true; done
    for u in "$API_METRICS" "$API_SHORT_METRICS"; do curl -s -m 5 "$u/metrics" || true; done
  } | sed -n -E 's/^ticketd_api_request_seconds_(sum|count)\{route="\/v1\/events\/\{event_id\}\/dts\/\{dt_id\}\/holds",method="POST"\} /api_hold_\1 /p;
      s/^ticketd_(client_batch_wait|client_batch_call|write_batch|proposal_commit|raft_append|raft_fsync|sm_apply)_seconds_(sum|count) /\1_\2 /p' \
    | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' >"$1"
}
stages_json() { # BEFORE AFTER
  awk 'NR == FNR { b[$1] = $2; next } { d[$1] = $2 - (($1 in b) ? b[$1] : 0) }
    END { printf "{"; sep = ""
      for (k in d) if (k ~ /_sum$/) { n = k; sub(/_sum$/, "", n)
        if (d[n "_count"] > 0) { printf "%s\"%s\":%.3f", sep, n, d[k] / d[n "_count"] * 1000; sep = "," } }
      printf "}" }' "$1" "$2"
}
RESULTS="$RUN/results.jsonl"
: >"$RESULTS"
SEQ=0
# run SYSTEM WORKLOAD REP DT LOAD-ARGS...: one bounded run, one JSON line into $RESULTS.
run() {
  local sys="$1" wl="$2" rep="$3" dt="$4"; shift 4
  SEQ=$((SEQ + 1))
  local tok=()
  [ "$sys" = ticketd ] && tok=(--mint-users "$USERS" --root-key "$ROOT_KEY")
  local out f0=0 f1=0
  [ "$sys" = ticketd ] && f0=$(fsyncs) && stages_snap "$RUN/stages0"
  cpu_snap "$sys" "$RUN/cpu0"
  out=$("$BIN/ticketd-load" --seconds "$SECS" --seed "$(( $$ * 1000 + SEQ ))" --json "${tok[@]}" "$@" 2>>"$RUN/load.err") \
    || out='{"error":"load generator failed"}'
  cpu_snap "$sys" "$RUN/cpu1"
  local extra=",\"cpu_s\":$(cpu_json "$RUN/cpu0" "$RUN/cpu1")"
  if [ "$sys" = ticketd ]; then
    f1=$(fsyncs)
    stages_snap "$RUN/stages1"
    extra="$extra,\"fsyncs_all_nodes\":$((f1 - f0)),\"nodes\":$TD_N,\"stages_ms\":$(stages_json "$RUN/stages0" "$RUN/stages1")"
  fi
  echo "{\"system\":\"$sys\",\"workload\":\"$wl\",\"rep\":$rep,\"dt\":\"$dt\"$extra,\"result\":$out}" >>"$RESULTS"
  log "$wl $sys rep $rep: $(echo "$out" | jq -c '{ok_s: ((.ok_per_s_to_last_ok // .accepted_per_s)|floor), conflict, other, unknown, p50_ms, p99_ms}')"
}
SYSTEMS=(ticketd pg etcd)
hold_url() { echo "$(base_url "$1")/v1/events/$EVENT/dts/$2/holds"; }
BEST='{"tier_id":"silver","quantity":{q}}'

for rep in 1 2 3; do
  past_deadline && { log "deadline reached: stopping before rep $rep"; break; }
  # Rotate the order of the systems per repetition.
  order=("${SYSTEMS[@]:$(( (rep - 1) % 3 ))}" "${SYSTEMS[@]:0:$(( (rep - 1) % 3 ))}")
  want W1 && for sys in "${order[@]}"; do
    dt=$(new_dt "$sys" "b$$-w1-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
    run "$sys" W1 "$rep" "$dt" --url "$(hold_url "$sys" "$dt")" --body "$BEST" --clients 1
  done
  want W2 && for c in "${CONC[@]}"; do
    for sys in "${order[@]}"; do
      dt=$(new_dt "$sys" "b$$-w2c$c-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
      run "$sys" "W2-closed-c$c" "$rep" "$dt" --url "$(hold_url "$sys" "$dt")" --body "$BEST" --clients "$c"
    done
  done
  # W3: single chosen seats drawn uniformly from the 2,100 gold seats: conflicts grow as it fills.
  want W3 && for sys in "${order[@]}"; do
    dt=$(new_dt "$sys" "b$$-w3-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
    run "$sys" W3 "$rep" "$dt" --url "$(hold_url "$sys" "$dt")" --body '{"seats":[{q}]}' \
      --quantity-min 0 --quantity-max 2099 --clients 32
  done
  # W5: seat map reads of a 50,400-seat dt (ticketd serves it cached from any node).
  want W5 && for sys in "${order[@]}"; do
    dt=$(new_dt "$sys" "b$$-w5-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
    run "$sys" W5-seatmap "$rep" "$dt" --method GET --url "$(base_url "$sys")/v1/events/$EVENT/dts/$dt" --clients 16
  done
  # W4: 64 clients hold 1-4 silver seats and buy 30% of their holds (authorize, order, capture
  # through the payment simulator); the rest expire after HOLD_TTL_S. After the load, the seat
  # map is polled until every seat not bought is free again.
  want W4 && for sys in "${order[@]}"; do
    dt=$(new_dt "$sys" "b$$-w4-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
    run "$sys" W4 "$rep" "$dt" --flow buy --url "$(short_url "$sys")/v1/events/$EVENT/dts/$dt/holds" --body "$BEST" \
      --dt-url "$(short_url "$sys")/v1/events/$EVENT/dts/$dt" --buy-fraction 0.3 --clients 64 \
      --seats-back-s $((HOLD_TTL_S + 15))
  done
done

# W2 open loop: each peer's median max (highest closed-loop holds/s), halved, offered to that
# peer and to ticketd; latency from the intended send time.
median_max() { # SYSTEM: median over reps of the best closed-loop W2 rate
  jq -s --arg s "$1" '[.[] | select(.system==$s and (.workload|startswith("W2-closed")))]
    | group_by(.rep) | map(map(.result.ok_per_s_to_last_ok // .result.accepted_per_s // 0) | max) | sort
    | if length == 0 then 0 else .[(length/2|floor)] end | floor' "$RESULTS"
}
want W2open && for peer in pg etcd; do
  rate=$(( $(median_max "$peer") / 2 ))
  [ "$rate" -gt 0 ] || continue
  for rep in 1 2 3; do
    past_deadline && { log "deadline reached: open loop cut at $peer rep $rep"; break 2; }
    for sys in "$peer" ticketd; do
      dt=$(new_dt "$sys" "b$$-w2o$peer-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
      run "$sys" "W2-open-half-$peer-max" "$rep" "$dt" --url "$(hold_url "$sys" "$dt")" --body "$BEST" --rate "$rate" --timeline-ms 100
    done
  done
done

# W6: the on-sale mix, open loop in users: each user arriving reads the seat map, reads it again
# every 2 s while deciding (0-4 s), holds 1-4 silver seats and buys 30% of the holds. Rates step
# up a ladder, the systems interleaved at each step; a system leaves the ladder at the first
# step where the p99 of all its users' requests passes W6_P99_MS or more than 1% of them fail.
# Users/s served: the highest step it passed (median over the repetitions).
w6_ok() { # the last result line: within the bound?
  tail -1 "$RESULTS" | jq -e --argjson bound "$W6_P99_MS" '.result as $r
    | ($r.ok + $r.conflict + $r.other + $r.unknown + $r.transport_errors + $r.purchases.ok
       + ($r.purchases.failed | add // 0) + $r.purchases.transport_errors + $r.map_reads.ok + $r.map_reads.failed) as $all
    | ($r.other + $r.unknown + $r.transport_errors + $r.purchases.transport_errors
       + ([$r.purchases.failed | to_entries[] | select(.key != "410") | .value] | add // 0) + $r.map_reads.failed) as $bad
    | $r.all_p99_ms <= $bound and $all > 0 and ($bad / $all) <= 0.01' >/dev/null 2>&1
}
want W6 && for rep in 1 2 3; do
  past_deadline && { log "deadline reached: W6 cut at rep $rep"; break; }
  order=("${SYSTEMS[@]:$(( (rep - 1) % 3 ))}" "${SYSTEMS[@]:0:$(( (rep - 1) % 3 ))}")
  declare -A w6_out=()
  for rate in "${W6_RATES[@]}"; do
    for sys in "${order[@]}"; do
      [ -n "${w6_out[$sys]:-}" ] && continue
      dt=$(new_dt "$sys" "b$$-w6u$rate-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
      run "$sys" "W6-u$rate" "$rep" "$dt" --flow onsale --url "$(short_url "$sys")/v1/events/$EVENT/dts/$dt/holds" \
        --body "$BEST" --dt-url "$(short_url "$sys")/v1/events/$EVENT/dts/$dt" --buy-fraction 0.3 \
        --poll-ms 2000 --think-ms 2000 --rate "$rate"
      w6_ok || w6_out[$sys]=$rate
    done
  done
  unset w6_out
done

# W7: kill -9 the leader mid-storm (ticketd and etcd; a single PostgreSQL has no failover).
# 16 closed-loop clients for W7_SECS; the leader dies at W7_KILL_AT s; the longest stretch
# without an ok answer is the write outage. The killed node is restarted afterwards.
W7_SECS=$(( QUICK == 1 ? 10 : 14 )); W7_KILL_AT=3
ETCD_CMD=()
for i in 0 1 2; do
  ETCD_CMD[$i]="etcd --name e$i --data-dir $BENCH/etcd/e$i --listen-client-urls http://127.0.0.1:${ETCD_CLIENT[$i]} --advertise-client-urls http://127.0.0.1:${ETCD_CLIENT[$i]} --listen-peer-urls http://127.0.0.1:${ETCD_PEER[$i]} --initial-advertise-peer-urls http://127.0.0.1:${ETCD_PEER[$i]} --initial-cluster $cluster_spec --initial-cluster-state new --initial-cluster-token bench-$$"
done
etcd_leader() { # prints the index (0-2) of the etcd member that leads
  local i st
  for i in 0 1 2; do
    st=$(curl -s -m 2 -X POST "http://127.0.0.1:${ETCD_CLIENT[$i]}/v3/maintenance/status" -d '{}' 2>/dev/null) || continue
    if [ -n "$st" ] && [ "$(echo "$st" | jq -r '.leader')" = "$(echo "$st" | jq -r '.header.member_id')" ]; then
      echo "$i"; return 0
    fi
  done
  return 1
}
td_ctl() { # ticketctl as the cluster's operator
  tls_args "$TD_CERTS" admin-dev
  "$BIN/ticketctl" "${TLS_ARGS[@]}" "$@"
}
td_leader() { # prints the id (1-3) of the ticketd node that leads
  td_ctl --endpoints "$TD_EPS" -w json endpoint status 2>/dev/null \
    | jq -r '[.[] | select(.is_leader == true) | .id][0] // empty'
}
w7() { # SYSTEM REP
  local sys="$1" rep="$2" dt out victim
  dt=$(new_dt "$sys" "b$$-w7-$rep-$sys"); [ -n "$dt" ] || die "no dt on $sys"
  SEQ=$((SEQ + 1))
  local tok=()
  [ "$sys" = ticketd ] && tok=(--mint-users "$USERS" --root-key "$ROOT_KEY")
  "$BIN/ticketd-load" --seconds "$W7_SECS" --seed "$(( $$ * 1000 + SEQ ))" --json "${tok[@]}" \
    --url "$(hold_url "$sys" "$dt")" --body "$BEST" --clients 16 >"$RUN/w7-$sys-$rep.json" 2>>"$RUN/load.err" &
  local load=$!
  sleep "$W7_KILL_AT"
  case "$sys" in
    ticketd)
      victim=$(td_leader) || true
      [ -n "$victim" ] && kill -KILL "$(cat "$TD_DATA/node$victim.pid")" ;;
    etcd)
      victim=$(etcd_leader) || true
      [ -n "$victim" ] && kill -KILL "${ETCD_PIDS[$victim]}" ;;
  esac
  wait "$load" || true
  out=$(cat "$RUN/w7-$sys-$rep.json" 2>/dev/null); [ -n "$out" ] || out='{"error":"load generator failed"}'
  echo "{\"system\":\"$sys\",\"workload\":\"W7-leader-kill\",\"rep\":$rep,\"dt\":\"$dt\",\"killed\":\"${victim:-none}\",\"result\":$out}" >>"$RESULTS"
  log "W7 $sys rep $rep: killed ${victim:-nothing}; $(echo "$out" | jq -c '{ok_s: (.accepted_per_s|floor), max_ok_gap_ms, other, unknown}')"
  # Restart the killed member and wait until the cluster is whole again.
  case "$sys" in
    ticketd)
      if [ -n "$victim" ]; then
        tls_args "$TD_CERTS" "node-$victim"
        "$NODE_BIN" node --id "$victim" --data-dir "$TD_DATA/node$victim" "${TLS_ARGS[@]}" \
          --listen "127.0.0.1:700$victim" --metrics-listen "127.0.0.1:910$victim" --runtime-threads "$RT_THREADS" \
          >>"$TD_DATA/node$victim.log" 2>&1 &
        echo $! >"$TD_DATA/node$victim.pid"
        for _ in $(seq 1 100); do
          td_ctl --endpoints "127.0.0.1:700$victim" endpoint health >/dev/null 2>&1 && break; sleep 0.2
        done
      fi ;;
    etcd)
      if [ -n "$victim" ]; then
        # shellcheck disable=SC2086
        ${ETCD_CMD[$victim]} >>"$RUN/etcd$victim.log" 2>&1 &
        ETCD_PIDS[$victim]=$!; PIDS+=($!)
        for _ in $(seq 1 100); do
          curl -fsS -m 2 -X POST "http://127.0.0.1:${ETCD_CLIENT[$victim]}/v3/maintenance/status" -d '{}' >/dev/null 2>&1 && break; sleep 0.2
        done
      fi ;;
  esac
}
want W7 && for rep in 1 2 3; do
  past_deadline && { log "deadline reached: W7 cut at rep $rep"; break; }
  for sys in ticketd etcd; do w7 "$sys" "$rep"; done
done

# W8: the W2 storm at the 3-node cluster's best concurrency against 5 nodes (a fresh cluster;
# same machine, so 5 nodes share the same 2 cores: the cost of two more replicas).
best_conc() { # the concurrency of ticketd's best median W2 closed-loop run (256 when none)
  jq -rs '[.[] | select(.system=="ticketd" and (.workload|startswith("W2-closed")) and (.nodes // 3)==3)]
    | group_by(.workload) | map({w: .[0].workload, v: (map(.result.ok_per_s_to_last_ok // .result.accepted_per_s // 0) | sort | .[(length/2|floor)])})
    | max_by(.v) | .w // "W2-closed-c256" | sub("W2-closed-c"; "")' "$RESULTS"
}
if want W8; then
  c=$(best_conc)
  for n in 5 3; do
    td_start "$n"
    for rep in 1 2 3; do
      past_deadline && { log "deadline reached: W8 cut at $n nodes rep $rep"; break 2; }
      dt=$(new_dt ticketd "b$$-w8n$n-$rep"); [ -n "$dt" ] || die "no dt on ticketd"
      run ticketd "W8-n$n-c$c" "$rep" "$dt" --url "$(hold_url ticketd "$dt")" --body "$BEST" --clients "$c"
    done
  done
fi

# W10: what mutual TLS costs. The W2 storm at ticketd's best W2 concurrency against a fresh
# 3-node cluster with TLS (everything else in this script) and against one started without it
# (the only processes of this repository run so: this comparison is what they are for),
# alternating, three pairs; the report gives each pair's ratio of holds/s.
PLAIN=(--insecure) # the plain-text peer of the TLS comparison
td_start_insecure() { # a fresh 3-node cluster without TLS, seeded, the API in front of it
  local i eps="" members=""
  if [ -n "$API_PID" ]; then kill -TERM "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null || true; fi
  if [ -n "$API_SHORT_PID" ]; then kill -TERM "$API_SHORT_PID" 2>/dev/null; wait "$API_SHORT_PID" 2>/dev/null || true; fi
  API_SHORT_PID=""
  TICKETD_DATA="$TD_DATA" "$ROOT/scripts/cluster-down.sh" --wipe >/dev/null 2>&1 || true
  mkdir -p "$TD_DATA"
  TD_N=3
  for i in 1 2 3; do
    "$NODE_BIN" node --id "$i" --data-dir "$TD_DATA/node$i" "${PLAIN[@]}" \
      --listen "127.0.0.1:700$i" --metrics-listen "127.0.0.1:910$i" --runtime-threads "$RT_THREADS" \
      >>"$TD_DATA/node$i.log" 2>&1 &
    echo $! >"$TD_DATA/node$i.pid"
    eps="$eps${eps:+,}127.0.0.1:700$i"; members="$members${members:+,}$i=127.0.0.1:700$i"
  done
  TD_EPS="$eps"
  for _ in $(seq 1 50); do
    "$BIN/ticketctl" "${PLAIN[@]}" --endpoints "$TD_EPS" cluster init --members "$members" >/dev/null 2>&1 && break
    sleep 0.2
  done
  for _ in $(seq 1 100); do
    "$BIN/ticketctl" "${PLAIN[@]}" --endpoints "$TD_EPS" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$BIN/ticketd" seed --demo "${PLAIN[@]}" --endpoints "$TD_EPS" --buyers "$USERS" >"$RUN/seed-insecure.log" 2>&1 \
    || die "seed failed; see $RUN/seed-insecure.log"
  "$NODE_BIN" api "${PLAIN[@]}" --listen 127.0.0.1:8183 --metrics-listen 127.0.0.1:9183 --endpoints "$TD_EPS" \
    --root-key "$ROOT_KEY" --runtime-threads "$RT_THREADS" \
    --holds-per-user-per-minute 100000000 --holds-per-ip-per-minute 100000000 \
    --hold-ttl-s "$LONG_TTL_S" >>"$RUN/api-insecure.log" 2>&1 &
  API_PID=$!
  PIDS+=($!)
  wait_http "$API/healthz" || die "the API did not come up; see $RUN/api-insecure.log"
  SELLER=$(curl -s -X POST "$API/v1/sessions" -H 'content-type: application/json' -H 'idempotency-key: bench-seller' \
    -d '{"email":"seller2@example.org","password":"demo-password"}' | jq -r .token)
}
if want W10; then
  c=$(best_conc)
  for rep in 1 2 3; do
    past_deadline && { log "deadline reached: W10 cut at rep $rep"; break; }
    for mode in tls insecure; do
      if [ "$mode" = tls ]; then td_start 3; else td_start_insecure; fi
      dt=$(new_dt ticketd "b$$-w10-$mode-$rep"); [ -n "$dt" ] || die "no dt on ticketd ($mode)"
      run ticketd "W10-$mode-c$c" "$rep" "$dt" --url "$(hold_url ticketd "$dt")" --body "$BEST" --clients "$c"
    done
  done
  td_start 3
fi

# ---- report ----
COMMIT=$(git rev-parse --short HEAD)
DIRTY=$(git diff --quiet HEAD -- . 2>/dev/null && echo "" || echo " (with uncommitted changes)")
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
MACHINE="$(nproc) vCPUs ($CPU), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -sr)"
CMD="scripts/bench/run.sh"
[ $QUICK -eq 1 ] && CMD="$CMD --quick"
[ -n "$ONLY" ] && CMD="$CMD --only ${ONLY:1:${#ONLY}-2}"
jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$COMMIT$DIRTY" --arg machine "$MACHINE" \
  --arg profile "$PROFILE" --argjson flush "$CAL" --argjson idle "$IDLE_CAL" --arg cmd "$CMD" --arg pg "$PG_VERSION" --arg etcd "$ETCD_VERSION" \
  --argjson secs "$SECS" --arg note "${TICKETD_BENCH_NOTE:-}" --argjson ttl "$HOLD_TTL_S" --argjson w6bound "$W6_P99_MS" \
  --argjson rt "$RT_THREADS" \
  '{date: $date, commit: $commit, machine: $machine, ticketd_profile: $profile, command: $cmd, note: $note,
    runtime_threads: $rt, seconds_per_run: $secs, hold_ttl_s: $ttl, w6_p99_bound_ms: $w6bound, flush_calibration: $flush, idle_calibration: $idle, postgres: $pg, etcd: $etcd, runs: .}' \
  "$RESULTS" >"$OUT_JSON"

/usr/bin/python3 scripts/bench/bench_report.py "$OUT_JSON" "$OUT_MD"
log "wrote $OUT_MD and $OUT_JSON"
