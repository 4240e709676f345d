//! `ticketd-load`: an HTTP load generator for the benchmark suite, bounded in count and time,
//! for loopback targets.
//!
//! Open loop (`--rate N`): request i is due at start + i/N and its latency is measured from that
//! intended send time, so a stalled server shows in the numbers instead of slowing the load
//! (no coordinated omission). Closed loop (`--clients N`): N clients send back to back.
//! Latencies go into an HDR histogram; answers are classed ok (2xx), conflict (409), unknown
//! (503), other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, Semaphore};

#[derive(Parser, Clone)]
#[command(
    name = "ticketd-load",
    about = "Drive an HTTP route at a fixed rate or with N closed-loop clients"
)]
struct Args {
    /// Target URL; `{i}` in it is replaced by the request number.
    #[arg(long)]
    url: String,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// JSON body; `{i}` is replaced by the request number, `{q}` by a quantity drawn from
    /// `--quantity-min..=--quantity-max`.
    #[arg(long, default_value = "")]
    body: String,
    /// Smallest quantity for `{q}`.
    #[arg(long, default_value_t = 1)]
    quantity_min: u32,
    /// Largest quantity for `{q}`.
    #[arg(long, default_value_t = 4)]
    quantity_max: u32,
    /// Bearer token sent with every request.
    #[arg(long)]
    token: Option<String>,
    /// File of bearer tokens, one a line: request i sends line i mod n (spreads per-user limits
    /// over many users); overrides `--token`.
    #[arg(long)]
    tokens_file: Option<std::path::PathBuf>,
    #[arg(skip)]
    tokens: Vec<String>,
    /// Open loop: requests per second.
    #[arg(long, conflicts_with = "clients")]
    rate: Option<u64>,
    /// Closed loop: concurrent clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many requests.
    #[arg(long, default_value_t = 1_000_000)]
    requests_max: u64,
    /// Most requests in flight in open loop (a bound on the generator's own memory).
    #[arg(long, default_value_t = 4096)]
    in_flight_max: usize,
    /// Per-request timeout in ms.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Seed of the quantity draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    conflict: u64,
    unknown: u64,
    other: u64,
    /// The statuses counted in `other`, by status.
    other_statuses: std::collections::BTreeMap<u16, u64>,
    transport: u64,
}

struct Stats {
    hist: Histogram<u64>,
    tally: Tally,
}

fn quantity(args: &Args, i: u64) -> u32 {
    // SplitMix64 of (seed, i): reproducible, no shared RNG between tasks.
    let mut z = args
        .seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let span = args.quantity_max.saturating_sub(args.quantity_min) as u64 + 1;
    args.quantity_min + (z % span) as u32
}

async fn one(http: &reqwest::Client, args: &Args, i: u64, due: Instant, stats: &Mutex<Stats>) {
    let url = args.url.replace("{i}", &i.to_string());
    let method =
        reqwest::Method::from_bytes(args.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut req = http
        .request(method, url)
        .header("Idempotency-Key", format!("load-{}-{i}", args.seed));
    if !args.tokens.is_empty() {
        req = req.bearer_auth(&args.tokens[(i % args.tokens.len() as u64) as usize]);
    } else if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    if !args.body.is_empty() {
        let body = args
            .body
            .replace("{i}", &i.to_string())
            .replace("{q}", &quantity(args, i).to_string());
        req = req.header("Content-Type", "application/json").body(body);
    }
    let result = req.send().await;
    let latency_us = due.elapsed().as_micros() as u64;
    let mut s = stats.lock().await;
    let _ = s.hist.record(latency_us.max(1));
    match result {
        Ok(r) => match r.status().as_u16() {
            200..=299 => s.tally.ok += 1,
            409 => s.tally.conflict += 1,
            503 => s.tally.unknown += 1,
            status => {
                s.tally.other += 1;
                *s.tally.other_statuses.entry(status).or_default() += 1;
            }
        },
        Err(_) => s.tally.transport += 1,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if let Some(path) = &args.tokens_file {
        args.tokens = std::fs::read_to_string(path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        anyhow::ensure!(!args.tokens.is_empty(), "no tokens in {}", path.display());
    }
    anyhow::ensure!(
        args.rate.is_some() || args.clients.is_some(),
        "give --rate (open loop) or --clients (closed loop)"
    );
    let host = reqwest::Url::parse(&args.url)?
        .host_str()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        host == "localhost" || host.starts_with("127.") || host == "[::1]",
        "load is only sent to loopback, not to {host}"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .pool_max_idle_per_host(1024)
        .build()?;
    let stats = Arc::new(Mutex::new(Stats {
        hist: Histogram::new_with_bounds(1, 120_000_000, 3)?,
        tally: Tally::default(),
    }));
    let args = Arc::new(args);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let mut sent = 0u64;
    if let Some(rate) = args.rate {
        let gate = Arc::new(Semaphore::new(args.in_flight_max));
        let mut tasks = tokio::task::JoinSet::new();
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        while sent < args.requests_max {
            let due = start + interval * sent as u32;
            if due >= end {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let permit = gate.clone().acquire_owned().await?;
            let (http, args, stats) = (http.clone(), args.clone(), stats.clone());
            let i = sent;
            tasks.spawn(async move {
                one(&http, &args, i, due, &stats).await;
                drop(permit);
            });
            sent += 1;
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    } else if let Some(clients) = args.clients {
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (http, args, stats, counter) =
                (http.clone(), args.clone(), stats.clone(), counter.clone());
            tasks.spawn(async move {
                loop {
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= args.requests_max || Instant::now() >= end {
                        return;
                    }
                    one(&http, &args, i, Instant::now(), &stats).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        sent = counter
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(args.requests_max);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let s = stats.lock().await;
    let h = &s.hist;
    let t = &s.tally;
    let done = t.ok + t.conflict + t.unknown + t.other + t.transport;
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "mode": if args.rate.is_some() { "open" } else { "closed" },
                "offered_per_s": args.rate, "clients": args.clients, "sent": sent, "completed": done,
                "elapsed_s": elapsed, "accepted_per_s": t.ok as f64 / elapsed,
                "ok": t.ok, "conflict": t.conflict, "unknown": t.unknown, "other": t.other, "other_statuses": t.other_statuses, "transport_errors": t.transport,
                "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "p999_ms": q(0.999), "max_ms": h.max() as f64 / 1000.0,
            })
        );
    } else {
        println!(
            "sent {sent} completed {done} in {elapsed:.1}s: ok {} ({:.0}/s) conflict {} unknown {} other {} transport {}",
            t.ok,
            t.ok as f64 / elapsed,
            t.conflict,
            t.unknown,
            t.other,
            t.transport
        );
        println!(
            "latency ms: p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            h.max() as f64 / 1000.0
        );
    }
    Ok(())
}
