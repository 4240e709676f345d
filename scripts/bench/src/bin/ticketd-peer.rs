//! `ticketd-peer`: the benchmark's peers, PostgreSQL and etcd, behind the same HTTP shape as
//! ticketd's API for the measured routes, so `ticketd-load` drives all three alike. The bodies
//! are ticketd's own resource types (`ticketd_http::resources`), so their shapes cannot drift
//! apart; what a peer does not keep (labels, fees, sale window) is filled in plainly:
//!
//! - `POST /v1/events/{e}/dts/{dt}/holds` with `{"tier_id","quantity"}` (best available) or
//!   `{"seats":[..]}` (chosen seats): `201`, `Location` the hold's URL, with a Hold
//!   `{"hold_id","dt_id","status":"live","seats":[{"seat_index","ga_area_id":null,"label"}],
//!   "total_minor","currency","expires_at","order_id":null}` (labels `seat {i}`, the total the
//!   seats' tier prices of `--tiers`, no fee); `409` when a seat is taken or the tier has too few
//!   free seats.
//! - `GET /v1/events/{e}/dts/{dt}`: `{"dt": Dt, "seat_map": SeatMap}`, `seat_map.seat_states` one
//!   character per seat (`f` free, `h` held, `s` sold; etcd reads keys only, so there every
//!   taken seat is `h`), with the tiers' runs and counts.
//! - `POST /v1/events/{e}/dts/{dt}` with `{"hold_id","expected_total_minor"}`: buys a live hold,
//!   as ticketd's purchase does: the payment provider (`--payments`, ticketd's simulator)
//!   authorizes, the store turns the hold into an order in one transaction, then the payment is
//!   captured; `201`, `Location` `/v1/orders/{id}`, with an Order (`"status":"confirmed"`, the
//!   amount paid `expected_total_minor`; `tickets` empty: the peers issue none), or `410
//!   HOLD_EXPIRED` (the authorization voided).
//!
//! Any bearer token is accepted and none is checked: the peers are load targets, not services.
//! Loopback only.
//!
//! `pg`: PostgreSQL 15 with `synchronous_commit=on`; the schema and its functions (best
//! available by `FOR UPDATE SKIP LOCKED`, chosen seats by a conditional `UPDATE`, purchase,
//! expiry) are in `scripts/bench/pg/schema.sql`; one round trip per hold over a small pool of
//! connections; a sweeper task gives expired holds' seats back every second.
//!
//! `etcd`: a 3-member etcd 3.4 through its JSON gateway (`/v3/...`). A seat is held while the key
//! `seat/{dt}/{index}` exists; a hold grants a lease (the TTL) and then commits one transaction
//! that compares every seat key's version with 0 and puts them all, and the hold's record
//! `hold/{id}` (its seats), under the lease; the lease's expiry gives the seats back. A purchase
//! compares the hold record and every seat key's value, and puts the seats again without the
//! lease, with the order. Best
//! available takes candidates from a per-tier cursor in this process (etcd has no SKIP LOCKED),
//! and moves on when the transaction fails.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

/// mimalloc for the Rust heap (glibc malloc's locking and consolidation showed up at about
/// 15% of samples under load); C/C++ code (RocksDB) keeps the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use serde_json::{json, Value};
use ticketd_http::resources::catalogue::{
    Dt, DtStatus, DtWithSeatMap, SeatMap, SeatRange, Tier, TierAvailability, TierRun,
};
use ticketd_http::resources::rfc3339;
use ticketd_http::resources::sales::{HeldSeat, Hold, HoldStatus, Order, OrderStatus};
use ticketd_money::provider::{CreateIntent, HttpProvider, PaymentError, PaymentProvider};

#[derive(Parser)]
#[command(
    name = "ticketd-peer",
    about = "PostgreSQL and etcd behind ticketd's HTTP shape, for benchmarks"
)]
struct Args {
    /// HTTP listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:8180")]
    listen: SocketAddr,
    /// Tiers of the benchmark dt, in seat-index order: `id:count[:price_minor],...` (the
    /// prices, in `CURRENCY`, make the holds' totals; 0 when not given).
    #[arg(long, default_value = "gold:2100:12000,silver:48300:6000")]
    tiers: String,
    /// The venue the dts' answers name.
    #[arg(long, default_value = "ullevaal")]
    venue_id: String,
    /// Hold TTL in seconds.
    #[arg(long, default_value_t = 600)]
    ttl_s: u32,
    /// The payment provider (`host:port` of `ticketd-sim pay`) purchases go through.
    #[arg(long)]
    payments: Option<String>,
    /// Threads of the async runtime (default: one per CPU), as `ticketd api` takes them.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=ticketd_cluster::config::RUNTIME_THREADS_MAX as u64))]
    runtime_threads: Option<u64>,
    #[command(subcommand)]
    peer: Peer,
}

#[derive(Subcommand)]
enum Peer {
    /// PostgreSQL (schema: scripts/bench/pg/schema.sql).
    Pg {
        /// libpq-style connection string.
        #[arg(
            long,
            default_value = "host=127.0.0.1 port=5433 user=postgres dbname=bench"
        )]
        dsn: String,
        /// Connections in the pool.
        #[arg(long, default_value_t = 16)]
        pool: usize,
    },
    /// etcd 3.4 through its JSON gateway.
    Etcd {
        /// Comma-separated client URLs of the members.
        #[arg(
            long,
            default_value = "http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379"
        )]
        endpoints: String,
    },
}

/// The currency of the peers' prices (the benchmark dt's, on ticketd too).
const CURRENCY: &str = "EUR";
/// When the peers' dts start and their sale closes (2030-01-01T00:00:00Z, as the benchmark's
/// dts on ticketd); their sale opens at the Unix epoch.
const DT_STARTS_AT_MS: i64 = 1_893_456_000_000;

/// A tier of the benchmark dt: seat indexes `lo..hi`, each at `price_minor`.
struct TierDef {
    id: String,
    lo: u32,
    hi: u32,
    price_minor: i64,
}

/// The tiers, in seat-index order.
type Tiers = Vec<TierDef>;

fn parse_tiers(s: &str) -> anyhow::Result<(Tiers, u32)> {
    let mut tiers = Vec::new();
    let mut at = 0u32;
    for part in s.split(',') {
        let mut fields = part.split(':');
        let (Some(id), Some(n)) = (fields.next(), fields.next()) else {
            anyhow::bail!("tier {part:?} is not id:count[:price_minor]");
        };
        let n: u32 = n.parse()?;
        let price_minor: i64 = fields.next().map_or(Ok(0), str::parse)?;
        anyhow::ensure!(
            fields.next().is_none(),
            "tier {part:?} is not id:count[:price_minor]"
        );
        tiers.push(TierDef {
            id: id.to_string(),
            lo: at,
            hi: at + n,
            price_minor,
        });
        at += n;
    }
    Ok((tiers, at))
}

/// Unix milliseconds now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Deserialize)]
struct HoldReq {
    tier_id: Option<String>,
    quantity: Option<u32>,
    seats: Option<Vec<u32>>,
}

enum Outcome {
    Placed(Vec<u32>),
    Conflict(&'static str),
}

#[derive(Deserialize)]
struct PurchaseReq {
    hold_id: String,
    #[serde(default)]
    expected_total_minor: i64,
    #[serde(default)]
    payment_method_token: Option<String>,
}

struct Pg {
    conns: Vec<PgConn>,
    map: Vec<(tokio_postgres::Client, tokio_postgres::Statement)>,
    next: AtomicUsize,
}

struct PgConn {
    client: tokio_postgres::Client,
    best: tokio_postgres::Statement,
    chosen: tokio_postgres::Statement,
    purchase: tokio_postgres::Statement,
}

struct Etcd {
    http: reqwest::Client,
    endpoints: Vec<String>,
    next: AtomicUsize,
    /// Per (dt, tier): the next candidate offset inside the tier, advanced by every attempt.
    cursors: std::sync::Mutex<HashMap<(String, String), u64>>,
}

enum Backend {
    Pg(Pg),
    Etcd(Etcd),
}

struct App {
    backend: Backend,
    tiers: Tiers,
    venue_id: String,
    seats: u32,
    ttl_s: u32,
    holds: AtomicU64,
    payments: Option<HttpProvider>,
}

fn problem(status: StatusCode, code: &str, detail: String) -> Response {
    (
        status,
        [("content-type", "application/problem+json")],
        Json(json!({"status": status.as_u16(), "code": code, "detail": detail})),
    )
        .into_response()
}

fn hold_id(app: &App) -> String {
    format!(
        "h-{}-{}",
        std::process::id(),
        app.holds.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `201` answer: `body`, its URL in `Location`.
fn created(body: impl serde::Serialize, location: &str) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location.to_string())],
        Json(body),
    )
        .into_response()
}

/// The Hold resource of a hold just placed on `seats` (ticketd's shape).
fn placed_hold(app: &App, dt: &str, id: String, seats: &[u32]) -> Hold {
    let price = |i: u32| {
        app.tiers
            .iter()
            .find(|t| (t.lo..t.hi).contains(&i))
            .map_or(0, |t| t.price_minor)
    };
    Hold {
        hold_id: id,
        dt_id: dt.to_string(),
        status: HoldStatus::Live,
        seats: seats
            .iter()
            .map(|&i| HeldSeat {
                seat_index: Some(i),
                ga_area_id: None,
                label: format!("seat {i}"),
            })
            .collect(),
        total_minor: seats.iter().map(|&i| price(i)).sum(),
        currency: CURRENCY.to_string(),
        expires_at: rfc3339(now_ms().saturating_add(i64::from(app.ttl_s) * 1000)),
        order_id: None,
    }
}

async fn hold(
    State(app): State<Arc<App>>,
    Path((event, dt)): Path<(String, String)>,
    Json(req): Json<HoldReq>,
) -> Response {
    let id = hold_id(&app);
    let result = match (&req.seats, &req.tier_id, req.quantity) {
        (Some(seats), None, _) if !seats.is_empty() && seats.len() <= 20 => {
            if seats.iter().any(|s| *s >= app.seats) {
                return problem(StatusCode::BAD_REQUEST, "BAD_SEAT", "no such seat".into());
            }
            match &app.backend {
                Backend::Pg(pg) => pg_chosen(pg, &app, &dt, seats, &id).await,
                Backend::Etcd(e) => etcd_hold(e, &app, &dt, seats, &id).await,
            }
        }
        (None, Some(tier), Some(q)) if (1..=20).contains(&q) => {
            let Some(range) = app
                .tiers
                .iter()
                .find(|t| t.id == *tier)
                .map(|t| (t.lo, t.hi))
            else {
                return problem(StatusCode::NOT_FOUND, "NO_SUCH_TIER", tier.clone());
            };
            match &app.backend {
                Backend::Pg(pg) => pg_best(pg, &app, &dt, tier, q, &id).await,
                Backend::Etcd(e) => etcd_best(e, &app, &dt, tier, range, q, &id).await,
            }
        }
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "give seats, or tier_id and quantity (1..=20)".into(),
            )
        }
    };
    match result {
        Ok(Outcome::Placed(seats)) => {
            let location = format!("/v1/events/{event}/dts/{dt}/holds/{id}");
            created(placed_hold(&app, &dt, id, &seats), &location)
        }
        Ok(Outcome::Conflict(code)) => problem(StatusCode::CONFLICT, code, "conflict".into()),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "BACKEND_ERROR",
            format!("{e:#}"),
        ),
    }
}

/// The dt `dt` of event `event` as ticketd describes one, from what the peer knows of it.
fn dt_resource(app: &App, event: &str, dt: &str) -> Dt {
    Dt {
        dt_id: dt.to_string(),
        event_id: event.to_string(),
        venue_id: app.venue_id.clone(),
        status: DtStatus::Published,
        starts_at: rfc3339(DT_STARTS_AT_MS),
        time_zone: "Europe/Oslo".into(),
        sale_starts_at: rfc3339(0),
        sale_ends_at: rfc3339(DT_STARTS_AT_MS),
        tiers: app
            .tiers
            .iter()
            .map(|t| Tier {
                tier_id: t.id.clone(),
                name: t.id.clone(),
                price_minor: t.price_minor,
                currency: CURRENCY.into(),
                sections: Vec::new(),
                seat_ranges: vec![SeatRange {
                    start: t.lo,
                    end: t.hi,
                }],
                ga_areas: Vec::new(),
                capacity: t.hi - t.lo,
            })
            .collect(),
    }
}

/// The seat map of `dt` whose taken seats are `held` and `sold` (ticketd's shape: one
/// character per seat, the tiers' runs and counts).
fn seat_map_resource(app: &App, dt: &str, held: &[u32], sold: &[u32]) -> SeatMap {
    let mut states = vec![b'f'; app.seats as usize];
    for (seats, c) in [(held, b'h'), (sold, b's')] {
        for &i in seats {
            if let Some(s) = states.get_mut(i as usize) {
                *s = c;
            }
        }
    }
    let tiers = app
        .tiers
        .iter()
        .map(|t| {
            let of = |c: u8| {
                states[t.lo as usize..t.hi as usize]
                    .iter()
                    .filter(|&&s| s == c)
                    .count() as u32
            };
            TierAvailability {
                tier_id: t.id.clone(),
                name: t.id.clone(),
                price_minor: t.price_minor,
                fee_minor: 0,
                currency: CURRENCY.into(),
                capacity: t.hi - t.lo,
                available: of(b'f'),
                held: of(b'h'),
                sold: of(b's'),
            }
        })
        .collect();
    SeatMap {
        dt_id: dt.to_string(),
        venue_id: app.venue_id.clone(),
        seat_count: app.seats,
        // Only b'f', b'h' and b's' were written: ASCII.
        seat_states: String::from_utf8(states).unwrap_or_default(),
        tier_runs: app
            .tiers
            .iter()
            .map(|t| TierRun {
                first_seat: t.lo,
                length: t.hi - t.lo,
                tier_id: Some(t.id.clone()),
            })
            .collect(),
        tiers,
        ga: Vec::new(),
    }
}

async fn seat_map(
    State(app): State<Arc<App>>,
    Path((event, dt)): Path<(String, String)>,
) -> Response {
    let states = match &app.backend {
        Backend::Pg(pg) => pg_map(pg, &dt).await,
        Backend::Etcd(e) => etcd_map(e, &app, &dt).await.map(|held| (held, Vec::new())),
    };
    match states {
        Ok((held, sold)) => Json(DtWithSeatMap {
            dt: dt_resource(&app, &event, &dt),
            seat_map: seat_map_resource(&app, &dt, &held, &sold),
        })
        .into_response(),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "BACKEND_ERROR",
            format!("{e:#}"),
        ),
    }
}

/// Buys a live hold: authorize, commit the order, capture (ticketd's saga, without its
/// recovery paths: the peers are load targets).
async fn purchase(
    State(app): State<Arc<App>>,
    Path((event, dt)): Path<(String, String)>,
    Json(req): Json<PurchaseReq>,
) -> Response {
    let Some(provider) = &app.payments else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "no payment provider configured (--payments)".into(),
        );
    };
    if req.hold_id.is_empty() || req.hold_id.len() > 128 {
        return problem(StatusCode::BAD_REQUEST, "BAD_REQUEST", "hold_id".into());
    }
    let intent = match provider
        .authorize(
            &req.hold_id,
            &CreateIntent {
                amount: req.expected_total_minor.max(1),
                currency: CURRENCY.into(),
                payment_method: req
                    .payment_method_token
                    .clone()
                    .unwrap_or_else(|| "pm_card_visa".into()),
                metadata: [
                    ("hold_id".to_string(), req.hold_id.clone()),
                    ("dt_id".to_string(), dt.clone()),
                ]
                .into(),
            },
        )
        .await
    {
        Ok(i) => i,
        Err(PaymentError::Declined(detail)) => {
            return problem(StatusCode::PAYMENT_REQUIRED, "PAYMENT_DECLINED", detail)
        }
        Err(e) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "PAYMENT_UNKNOWN",
                e.to_string(),
            )
        }
    };
    let order_id = format!("o-{}", req.hold_id);
    let bought = match &app.backend {
        Backend::Pg(pg) => {
            pg_purchase(
                pg,
                &req.hold_id,
                &order_id,
                req.expected_total_minor,
                &intent.id,
            )
            .await
        }
        Backend::Etcd(e) => etcd_purchase(e, &dt, &req.hold_id, &order_id).await,
    };
    match bought {
        Ok(true) => match provider.capture(&intent.id).await {
            Ok(_) => {
                let location = format!("/v1/orders/{order_id}");
                let order = Order {
                    order_id,
                    status: OrderStatus::Confirmed,
                    event_id: event,
                    dt_id: dt,
                    hold_id: req.hold_id,
                    tickets: Vec::new(),
                    subtotal_minor: req.expected_total_minor,
                    fee_minor: 0,
                    total_minor: req.expected_total_minor,
                    refunded_minor: 0,
                    currency: CURRENCY.into(),
                    created_at: rfc3339(now_ms()),
                };
                created(order, &location)
            }
            Err(e) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "CAPTURE_FAILED",
                e.to_string(),
            ),
        },
        Ok(false) => {
            let _ = provider.cancel(&intent.id).await;
            problem(StatusCode::GONE, "HOLD_EXPIRED", "the hold is gone".into())
        }
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "BACKEND_ERROR",
            format!("{e:#}"),
        ),
    }
}

// ---- PostgreSQL ----

/// Ok(false): the hold expired or is gone.
async fn pg_purchase(
    pg: &Pg,
    hold: &str,
    order: &str,
    amount: i64,
    payment: &str,
) -> anyhow::Result<bool> {
    let c = &pg.conns[pg.next.fetch_add(1, Ordering::Relaxed) % pg.conns.len()];
    match c
        .client
        .query_one(&c.purchase, &[&hold, &order, &amount, &payment])
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code().map(|c| c.code()) == Some("TK411") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Most holds one sweep statement expires; most statements per tick.
const SWEEP_HOLDS_MAX: i32 = 10_000;
const SWEEP_STATEMENTS_MAX: usize = 10;

/// Every second, gives the seats of expired holds back (as ticketd's leader proposes
/// `ExpireHolds` every second).
async fn pg_sweeper(dsn: String) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok((client, conn)) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await else {
            continue;
        };
        let task = tokio::spawn(conn);
        loop {
            let mut failed = false;
            for _ in 0..SWEEP_STATEMENTS_MAX {
                match client
                    .query_one("SELECT expire_holds($1)", &[&SWEEP_HOLDS_MAX])
                    .await
                {
                    Ok(row) if row.get::<_, i32>(0) < SWEEP_HOLDS_MAX => break,
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("expire_holds: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        task.abort();
    }
}

fn pg_conflict(e: &tokio_postgres::Error) -> Option<&'static str> {
    match e.code().map(|c| c.code()) {
        Some("TK409") => Some("SEAT_ALREADY_HELD"),
        Some("TK410") => Some("NOT_ENOUGH_SEATS"),
        _ => None,
    }
}

async fn pg_best(
    pg: &Pg,
    app: &App,
    dt: &str,
    tier: &str,
    q: u32,
    id: &str,
) -> anyhow::Result<Outcome> {
    let c = &pg.conns[pg.next.fetch_add(1, Ordering::Relaxed) % pg.conns.len()];
    match c
        .client
        .query_one(
            &c.best,
            &[&dt, &tier, &(q as i32), &id, &(app.ttl_s as i32)],
        )
        .await
    {
        Ok(row) => Ok(Outcome::Placed(
            row.get::<_, Vec<i32>>(0)
                .into_iter()
                .map(|s| s as u32)
                .collect(),
        )),
        Err(e) => pg_conflict(&e)
            .map(Outcome::Conflict)
            .ok_or_else(|| e.into()),
    }
}

async fn pg_chosen(
    pg: &Pg,
    app: &App,
    dt: &str,
    seats: &[u32],
    id: &str,
) -> anyhow::Result<Outcome> {
    let c = &pg.conns[pg.next.fetch_add(1, Ordering::Relaxed) % pg.conns.len()];
    let arr: Vec<i32> = seats.iter().map(|s| *s as i32).collect();
    match c
        .client
        .query_one(&c.chosen, &[&dt, &arr, &id, &(app.ttl_s as i32)])
        .await
    {
        Ok(_) => Ok(Outcome::Placed(seats.to_vec())),
        Err(e) => pg_conflict(&e)
            .map(Outcome::Conflict)
            .ok_or_else(|| e.into()),
    }
}

/// The held seats of `dt` and its sold ones.
async fn pg_map(pg: &Pg, dt: &str) -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
    let (c, st) = &pg.map[pg.next.fetch_add(1, Ordering::Relaxed) % pg.map.len()];
    let row = c.query_one(st, &[&dt]).await?;
    let seats = |i: usize| -> Vec<u32> {
        row.get::<_, Option<Vec<i32>>>(i)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s as u32)
            .collect()
    };
    Ok((seats(0), seats(1)))
}

async fn pg_connect(dsn: &str, pool: usize) -> anyhow::Result<Pg> {
    let mut conns = Vec::new();
    let mut map = Vec::new();
    for i in 0..pool.clamp(1, 256) {
        let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("postgres connection: {e}");
            }
        });
        client.batch_execute("SET synchronous_commit = on").await?;
        let best = client
            .prepare("SELECT hold_best($1, $2, $3, $4, $5)")
            .await?;
        let chosen = client.prepare("SELECT hold_seats($1, $2, $3, $4)").await?;
        let purchase = client.prepare("SELECT purchase($1, $2, $3, $4)").await?;
        // A few more connections serve the seat map reads.
        if i < 4 {
            let (reader, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("postgres connection: {e}");
                }
            });
            let st = reader
                .prepare(
                    "SELECT array_agg(seat_idx) FILTER (WHERE status = 1), \
                     array_agg(seat_idx) FILTER (WHERE status = 2) \
                     FROM seats WHERE dt_id = $1 AND status <> 0",
                )
                .await?;
            map.push((reader, st));
        }
        conns.push(PgConn {
            client,
            best,
            chosen,
            purchase,
        });
    }
    Ok(Pg {
        conns,
        map,
        next: AtomicUsize::new(0),
    })
}

// ---- etcd ----

fn seat_key(dt: &str, i: u32) -> String {
    format!("seat/{dt}/{i:06}")
}

fn hold_key(id: &str) -> String {
    format!("hold/{id}")
}

/// Ok(false): the hold's lease expired (or it never was).
async fn etcd_purchase(e: &Etcd, dt: &str, id: &str, order: &str) -> anyhow::Result<bool> {
    let r = e
        .call("/v3/kv/range", json!({"key": B64.encode(hold_key(id))}))
        .await?;
    let Some(kv) = r["kvs"].as_array().and_then(|a| a.first()) else {
        return Ok(false);
    };
    let seats: Vec<u32> =
        serde_json::from_slice(&B64.decode(kv["value"].as_str().unwrap_or_default())?)?;
    let mut compare = vec![
        json!({"key": B64.encode(hold_key(id)), "target": "VERSION", "result": "GREATER", "version": "0"}),
    ];
    compare.extend(seats.iter().map(|s| {
        json!({"key": B64.encode(seat_key(dt, *s)), "target": "VALUE", "result": "EQUAL", "value": B64.encode(id)})
    }));
    // The seats put again without a lease stay taken; the order is recorded; the hold is gone.
    let mut success: Vec<Value> = seats
        .iter()
        .map(|s| json!({"request_put": {"key": B64.encode(seat_key(dt, *s)), "value": B64.encode(format!("sold:{id}"))}}))
        .collect();
    success.push(json!({"request_put": {"key": B64.encode(format!("order/{order}")), "value": B64.encode(json!({"hold_id": id, "seats": seats}).to_string())}}));
    success.push(json!({"request_delete_range": {"key": B64.encode(hold_key(id))}}));
    let r = e
        .call(
            "/v3/kv/txn",
            json!({"compare": compare, "success": success}),
        )
        .await?;
    Ok(r["succeeded"].as_bool() == Some(true))
}

impl Etcd {
    async fn call(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let ep = &self.endpoints[self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len()];
        let r = self
            .http
            .post(format!("{ep}{path}"))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "etcd {path}: {status} {v}");
        Ok(v)
    }
}

async fn etcd_hold(
    e: &Etcd,
    app: &App,
    dt: &str,
    seats: &[u32],
    id: &str,
) -> anyhow::Result<Outcome> {
    let lease = e.call("/v3/lease/grant", json!({"TTL": app.ttl_s})).await?;
    let lease_id = lease["ID"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("lease grant: {lease}"))?
        .to_string();
    let compare: Vec<Value> = seats
        .iter()
        .map(|s| {
            json!({"key": B64.encode(seat_key(dt, *s)), "target": "VERSION", "result": "EQUAL", "version": "0"})
        })
        .collect();
    let mut success: Vec<Value> = seats
        .iter()
        .map(|s| {
            json!({"request_put": {"key": B64.encode(seat_key(dt, *s)), "value": B64.encode(id), "lease": lease_id}})
        })
        .collect();
    // The hold's record, for its purchase: its seats, under the same lease.
    success.push(json!({"request_put": {"key": B64.encode(hold_key(id)), "value": B64.encode(json!(seats).to_string()), "lease": lease_id}}));
    let r = e
        .call(
            "/v3/kv/txn",
            json!({"compare": compare, "success": success}),
        )
        .await?;
    if r["succeeded"].as_bool() == Some(true) {
        Ok(Outcome::Placed(seats.to_vec()))
    } else {
        // The lease would expire by itself; revoke it so failed attempts leave nothing behind.
        let _ = e.call("/v3/lease/revoke", json!({"ID": lease_id})).await;
        Ok(Outcome::Conflict("SEAT_ALREADY_HELD"))
    }
}

#[allow(clippy::too_many_arguments)]
async fn etcd_best(
    e: &Etcd,
    app: &App,
    dt: &str,
    tier: &str,
    (lo, hi): (u32, u32),
    q: u32,
    id: &str,
) -> anyhow::Result<Outcome> {
    let size = (hi - lo) as u64;
    // A bounded number of attempts, each on the next q candidates of the tier's cursor.
    for _ in 0..8 {
        let start = {
            let mut cursors = e.cursors.lock().unwrap_or_else(|p| p.into_inner());
            let c = cursors
                .entry((dt.to_string(), tier.to_string()))
                .or_insert(0);
            let s = *c;
            *c += q as u64;
            s
        };
        if start + q as u64 > size {
            return Ok(Outcome::Conflict("NOT_ENOUGH_SEATS"));
        }
        let seats: Vec<u32> = (0..q).map(|k| lo + (start as u32) + k).collect();
        if let Outcome::Placed(s) = etcd_hold(e, app, dt, &seats, id).await? {
            return Ok(Outcome::Placed(s));
        }
    }
    Ok(Outcome::Conflict("SEAT_ALREADY_HELD"))
}

async fn etcd_map(e: &Etcd, _app: &App, dt: &str) -> anyhow::Result<Vec<u32>> {
    let prefix = format!("seat/{dt}/");
    let mut end = prefix.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let r = e
        .call(
            "/v3/kv/range",
            json!({"key": B64.encode(&prefix), "range_end": B64.encode(&end), "keys_only": true}),
        )
        .await?;
    let mut held = Vec::new();
    for kv in r["kvs"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let key = B64.decode(kv["key"].as_str().unwrap_or_default())?;
        let key = String::from_utf8_lossy(&key);
        if let Some(i) = key.rsplit('/').next().and_then(|s| s.parse().ok()) {
            held.push(i);
        }
    }
    Ok(held)
}

fn main() -> anyhow::Result<()> {
    // rustls's crypto provider for the whole process (ring): reqwest and lettre take none of
    // their own.
    ticketd_raft::tls::install_provider();
    ticketd_cluster::process::disable_huge_pages();
    let args = Args::parse();
    ticketd_cluster::process::runtime(args.runtime_threads.map(|n| n as usize))?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "the peers listen on loopback only"
    );
    let (tiers, seats) = parse_tiers(&args.tiers)?;
    let backend = match &args.peer {
        Peer::Pg { dsn, pool } => {
            tokio::spawn(pg_sweeper(dsn.clone()));
            Backend::Pg(pg_connect(dsn, *pool).await?)
        }
        Peer::Etcd { endpoints } => {
            let endpoints: Vec<String> = endpoints.split(',').map(str::to_string).collect();
            for ep in &endpoints {
                let host = reqwest::Url::parse(ep)?
                    .host_str()
                    .unwrap_or_default()
                    .to_string();
                anyhow::ensure!(host.starts_with("127."), "etcd only on loopback, not {ep}");
            }
            Backend::Etcd(Etcd {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .pool_max_idle_per_host(256)
                    .build()?,
                endpoints,
                next: AtomicUsize::new(0),
                cursors: std::sync::Mutex::new(HashMap::new()),
            })
        }
    };
    let app = Arc::new(App {
        backend,
        tiers,
        venue_id: args.venue_id.clone(),
        seats,
        ttl_s: args.ttl_s,
        holds: AtomicU64::new(0),
        payments: args
            .payments
            .as_deref()
            .map(|p| HttpProvider::new(p, Duration::from_secs(10)))
            .transpose()
            .map_err(|e| anyhow::anyhow!("payment provider: {e}"))?,
    });
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/events/{e}/dts/{dt}/holds", post(hold))
        .route("/v1/events/{e}/dts/{dt}", get(seat_map).post(purchase))
        .with_state(app);
    // The same accept queue as the ticketd API's, so a burst of connections meets both alike.
    let listener = ticketd_http::listen(args.listen)?;
    eprintln!("ticketd-peer listening on http://{}", args.listen);
    // TCP_NODELAY as the ticketd API sets it, so both answer without waiting for Nagle.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await?;
    Ok(())
}
