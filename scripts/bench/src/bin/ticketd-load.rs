//! `ticketd-load`: an HTTP load generator for the benchmark suite, bounded in count and time,
//! for loopback targets.
//!
//! Open loop (`--rate N`): request i is due at start + i/N and its latency is measured from that
//! intended send time, so a stalled server shows in the numbers instead of slowing the load
//! (no coordinated omission). Closed loop (`--clients N`): N clients send back to back.
//! Latencies go into an HDR histogram; answers are classed ok (2xx), conflict (409), unknown
//! (503), other. Also reported: the longest stretch without an ok answer (the write outage when
//! a node is killed mid-run) and, for holds, every seat the ok answers placed, counted once per
//! answer: a seat placed twice is an oversell. A hold answer is a `201` whose body is a Hold
//! resource with `"status":"live"`; its seats are told apart by `seat_index` (general-admission
//! places have none and are not unique, so they are left out of the count). In the `buy` and
//! `onsale` flows holds expire during the run and their seats are held again, so there the
//! seats of the bought holds are counted instead: a seat bought twice is an oversell.
//!
//! Flows (`--flow`): `request` sends the one request of `--url` (the default); `buy` places a
//! hold at `--url` and buys a `--buy-fraction` of the holds placed at `--dt-url` (the purchase
//! route, paid with the provider's test card); `onsale` is open loop in users: each user arriving
//! reads the seat map at `--dt-url`, reads it again every `--poll-ms` while deciding for
//! `--think-ms`, holds, and buys a `--buy-fraction` of the holds. With `--seats-back-s`, after the
//! load the seat map is polled until every seat not bought is free again (the holds' expiry), and
//! the time from the end of the load until then is reported.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

/// mimalloc for the Rust heap (glibc malloc's locking and consolidation showed up at about
/// 15% of samples under load); C/C++ code (RocksDB) keeps the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Method;
use tokio::sync::{Mutex, Semaphore};

/// Kept-alive connections of one host:port that are not in use, at most.
const IDLE_PER_HOST_MAX: usize = 4096;

/// One kept-alive HTTP/1.1 connection, ready for a request.
type Conn = SendRequest<Full<Bytes>>;

/// The generator's HTTP/1.1 client: kept-alive connections per host:port, one request at a time
/// on each, a deadline on every request. It shares the machine's two cores with the system under
/// test, so it does no more than that: no URL normalisation, redirects, proxies or
/// decompression (a general-purpose client spent about a third of the generator's CPU on them).
#[derive(Clone)]
struct Http {
    idle: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<Conn>>>>,
    timeout: Duration,
}

impl Http {
    fn new(timeout: Duration) -> Self {
        Self {
            idle: Arc::default(),
            timeout,
        }
    }

    /// Sends one request and reads the whole answer: its status and body.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let uri: hyper::Uri = url.parse()?;
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("no host in {url}"))?
            .as_str()
            .to_string();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let body = Bytes::from(body.unwrap_or_default());
        let build = || {
            let mut req = hyper::Request::builder()
                .method(method.clone())
                .uri(path)
                .header(hyper::header::HOST, &authority);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.body(Full::new(body.clone()))
        };
        tokio::time::timeout(self.timeout, async {
            // A kept-alive connection the server closed meanwhile fails the request before
            // anything is sent (canceled): once, it goes again on a new connection.
            let (mut conn, mut reused) = self.connection(&authority).await?;
            let answer = loop {
                conn.ready().await?;
                match conn.send_request(build()?).await {
                    Err(e) if reused && e.is_canceled() => {
                        conn = self.connect(&authority).await?;
                        reused = false;
                    }
                    other => break other?,
                }
            };
            let status = answer.status().as_u16();
            let body = answer.into_body().collect().await?.to_bytes();
            // Back to the pool only once the answer is read whole (the next request may go).
            if !conn.is_closed() {
                let mut idle = self.idle.lock().expect("pool lock");
                let conns = idle.entry(authority.clone()).or_default();
                if conns.len() < IDLE_PER_HOST_MAX {
                    conns.push(conn);
                }
            }
            Ok((status, body))
        })
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.timeout))?
    }

    /// An idle kept-alive connection to `authority` (and true), or a new one.
    async fn connection(&self, authority: &str) -> anyhow::Result<(Conn, bool)> {
        loop {
            let conn = self
                .idle
                .lock()
                .expect("pool lock")
                .get_mut(authority)
                .and_then(Vec::pop);
            match conn {
                Some(c) if !c.is_closed() => return Ok((c, true)),
                Some(_) => continue,
                None => return Ok((self.connect(authority).await?, false)),
            }
        }
    }

    async fn connect(&self, authority: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (conn, driver) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the connection closes; its errors show on the requests.
            let _ = driver.await;
        });
        Ok(conn)
    }
}

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
    /// Sign tokens for users `{mint_prefix}1..=N` with the tokens' key derived from `--root-key`
    /// (the API's) instead of reading them from a file; the users must exist (`ticketd seed
    /// --buyers N`).
    #[arg(long, requires = "root_key", conflicts_with = "tokens_file")]
    mint_users: Option<u32>,
    /// Prefix of the minted users' ids.
    #[arg(long, default_value = "buyer-")]
    mint_prefix: String,
    /// The API's root key (64 hex digits), for `--mint-users`.
    #[arg(long, env = "TICKETD_API_ROOT_KEY", hide_env_values = true)]
    root_key: Option<String>,
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
    /// Also break the requests of the `request` flow down by intended send time, in slices of
    /// this many ms (0: off): each slice's count, mean and max latency, to see when a stall
    /// happened rather than only that one did.
    #[arg(long, default_value_t = 0)]
    timeline_ms: u64,
    /// What one unit of load is: one request, a hold then maybe a purchase, or a user's visit.
    #[arg(long, value_enum, default_value_t = Flow::Request)]
    flow: Flow,
    /// The dt's URL: its seat map (GET) and its purchase route (POST), for `buy` and `onsale`.
    #[arg(long)]
    dt_url: Option<String>,
    /// Share of placed holds that are bought (`buy`, `onsale`).
    #[arg(long, default_value_t = 0.3)]
    buy_fraction: f64,
    /// `onsale`: a deciding user reads the seat map again this often, ms.
    #[arg(long, default_value_t = 2_000)]
    poll_ms: u64,
    /// `onsale`: how long a user looks at the map before holding, ms (drawn from 0..=2x this).
    #[arg(long, default_value_t = 4_000)]
    think_ms: u64,
    /// After the load, wait at most this long for every seat not bought to be free again.
    #[arg(long)]
    seats_back_s: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Flow {
    /// One request per unit.
    Request,
    /// A hold, then a purchase of a share of them.
    Buy,
    /// A user's visit: seat map polls, a hold, maybe a purchase.
    Onsale,
}

/// Answers to the purchases and seat-map reads of the `buy` and `onsale` flows.
#[derive(Default)]
struct Extra {
    purchase_ok: u64,
    /// Refused purchases, by status (410: the hold expired first).
    purchase_failed: std::collections::BTreeMap<u16, u64>,
    purchase_transport: u64,
    /// Seats of the bought holds.
    seats_bought: u64,
    map_ok: u64,
    map_failed: u64,
    users_done: u64,
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
    /// When each ok answer arrived, µs since the start.
    ok_at_us: Vec<u64>,
    /// When the last conflict answer came, from the start.
    last_conflict_us: u64,
    /// Seats placed by live hold answers (their `seats[].seat_index`), as JSON text, one per
    /// placement (the `request` flow).
    placed: Vec<String>,
    /// Seats of the holds bought (`buy`, `onsale`), the same way.
    bought: Vec<String>,
    /// Purchases (their own latencies) and seat-map reads.
    purchase_hist: Histogram<u64>,
    map_hist: Histogram<u64>,
    /// Every request of a user's visit (`onsale`): the bound users are served at.
    all_hist: Histogram<u64>,
    extra: Extra,
    /// `--timeline-ms`: per slice of intended send time, (requests, latency sum µs, max µs).
    timeline: Vec<(u64, u64, u64)>,
}

/// Most slices of a timeline (a bound on its memory); later requests join the last slice.
const TIMELINE_SLICES_MAX: usize = 100_000;

/// The fields of a hold answer (ticketd's Hold resource, and the peers' of the same shape) the
/// generator reads; the rest (labels, times) is skipped unread.
#[derive(serde::Deserialize)]
struct HoldAnswer<'a> {
    #[serde(borrow)]
    hold_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    seats: Vec<HeldSeatAnswer>,
    total_minor: i64,
}

/// A seat of a hold answer: its index, none for a general-admission place.
#[derive(serde::Deserialize)]
struct HeldSeatAnswer {
    seat_index: Option<u32>,
}

/// A hold placed: what its purchase needs, and its seats as JSON text each.
struct Placed {
    hold_id: String,
    total_minor: i64,
    seats: Vec<String>,
}

/// The hold of a `201` answer whose body is a live hold; None for any other answer (a seat map,
/// another resource, a problem). Parsed into the few fields above, not into a JSON tree.
fn live_hold(status: u16, body: &[u8]) -> Option<Placed> {
    if status != 201 {
        return None;
    }
    let h: HoldAnswer<'_> = serde_json::from_slice(body).ok()?;
    (h.status == "live").then(|| Placed {
        hold_id: h.hold_id.into_owned(),
        total_minor: h.total_minor,
        seats: h
            .seats
            .iter()
            .filter_map(|x| x.seat_index.map(|i| i.to_string()))
            .collect(),
    })
}

/// SplitMix64 of (seed, i, salt): reproducible draws, no shared RNG between tasks.
fn mix(args: &Args, i: u64, salt: u64) -> u64 {
    let mut z = args
        .seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn quantity(args: &Args, i: u64) -> u32 {
    let z = mix(args, i, 0);
    let span = args.quantity_max.saturating_sub(args.quantity_min) as u64 + 1;
    args.quantity_min + (z % span) as u32
}

async fn one(
    http: &Http,
    args: &Args,
    i: u64,
    due: Instant,
    start: Instant,
    stats: &Mutex<Stats>,
) -> Option<Placed> {
    let url = if args.url.contains("{i}") {
        std::borrow::Cow::Owned(args.url.replace("{i}", &i.to_string()))
    } else {
        std::borrow::Cow::Borrowed(args.url.as_str())
    };
    let method = Method::from_bytes(args.method.as_bytes()).unwrap_or(Method::POST);
    let key = format!("load-{}-{i}", args.seed);
    let auth = token(args, i).map(|t| format!("Bearer {t}"));
    let mut headers = write_headers(&key, &auth);
    let body = (!args.body.is_empty()).then(|| {
        headers.push(("content-type", "application/json"));
        args.body
            .replace("{i}", &i.to_string())
            .replace("{q}", &quantity(args, i).to_string())
            .into_bytes()
    });
    let result = http.send(method, &url, &headers, body).await;
    let latency_us = due.elapsed().as_micros() as u64;
    // Parsed before the statistics' lock is taken (every task shares it); only a 201 is parsed,
    // so the seat maps of W5 (200) are not.
    let mut placed = match &result {
        Ok((status, body)) => live_hold(*status, body),
        Err(_) => None,
    };
    let mut s = stats.lock().await;
    let _ = s.hist.record(latency_us.max(1));
    let _ = s.all_hist.record(latency_us.max(1));
    if !s.timeline.is_empty() {
        let at_ms = due.saturating_duration_since(start).as_millis() as u64;
        let i = ((at_ms / args.timeline_ms) as usize).min(s.timeline.len() - 1);
        let slice = &mut s.timeline[i];
        slice.0 += 1;
        slice.1 += latency_us;
        slice.2 = slice.2.max(latency_us);
    }
    match result {
        Ok((status, _)) => match status {
            200..=299 => {
                s.tally.ok += 1;
                s.ok_at_us.push(start.elapsed().as_micros() as u64);
                if args.flow == Flow::Request {
                    if let Some(hold) = placed.take() {
                        s.placed.extend(hold.seats);
                    }
                }
            }
            409 => {
                s.tally.conflict += 1;
                s.last_conflict_us = start.elapsed().as_micros() as u64;
            }
            503 => s.tally.unknown += 1,
            status => {
                s.tally.other += 1;
                *s.tally.other_statuses.entry(status).or_default() += 1;
            }
        },
        Err(_) => s.tally.transport += 1,
    }
    placed
}

/// A uniform draw in [0, 1) from (seed, i, salt).
fn unit(args: &Args, i: u64, salt: u64) -> f64 {
    (mix(args, i, salt) >> 11) as f64 / (1u64 << 53) as f64
}

/// The bearer token of unit i.
fn token(args: &Args, i: u64) -> Option<&str> {
    if !args.tokens.is_empty() {
        Some(&args.tokens[(i % args.tokens.len() as u64) as usize])
    } else {
        args.token.as_deref()
    }
}

/// The headers of a write: its idempotency key, and the bearer token when there is one.
fn write_headers<'a>(key: &'a str, auth: &'a Option<String>) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("idempotency-key", key)];
    if let Some(a) = auth {
        headers.push(("authorization", a.as_str()));
    }
    headers
}

/// Buys a live hold: the purchase route of the dt, the hold's total (ticketd checks it; the
/// peers record it), the provider's test card. A `201` (an Order) is a purchase made.
async fn buy(http: &Http, args: &Args, i: u64, hold: Placed, stats: &Mutex<Stats>) {
    let Some(url) = &args.dt_url else { return };
    let seats = hold.seats.len() as u64;
    let body = serde_json::json!({
        "hold_id": hold.hold_id,
        "expected_total_minor": hold.total_minor,
        "payment_method_token": "pm_card_visa",
    });
    let key = format!("load-buy-{}-{i}", args.seed);
    let auth = token(args, i).map(|t| format!("Bearer {t}"));
    let mut headers = write_headers(&key, &auth);
    headers.push(("content-type", "application/json"));
    let sent = Instant::now();
    let result = http
        .send(
            Method::POST,
            url,
            &headers,
            Some(body.to_string().into_bytes()),
        )
        .await
        .map(|(status, _)| status);
    let us = (sent.elapsed().as_micros() as u64).max(1);
    let mut s = stats.lock().await;
    let _ = s.purchase_hist.record(us);
    let _ = s.all_hist.record(us);
    match result {
        Ok(200..=299) => {
            s.extra.purchase_ok += 1;
            s.extra.seats_bought += seats;
            s.bought.extend(hold.seats);
        }
        Ok(status) => *s.extra.purchase_failed.entry(status).or_default() += 1,
        Err(_) => s.extra.purchase_transport += 1,
    }
}

/// Reads the dt's seat map (its latency from `due`, when it was meant to be sent, into `stats`
/// when given); without `stats`, the number of free seats when the answer is one.
async fn read_map(
    http: &Http,
    args: &Args,
    due: Instant,
    stats: Option<&Mutex<Stats>>,
) -> Option<u64> {
    let url = args.dt_url.as_ref()?;
    let sent = due;
    let body = match http.send(Method::GET, url, &[], None).await {
        Ok((200..=299, b)) => Some(b),
        _ => None,
    };
    if let Some(stats) = stats {
        let us = (sent.elapsed().as_micros() as u64).max(1);
        let mut s = stats.lock().await;
        let _ = s.map_hist.record(us);
        let _ = s.all_hist.record(us);
        if body.is_some() {
            s.extra.map_ok += 1;
        } else {
            s.extra.map_failed += 1;
        }
        // A user's read is not parsed: the generator shares the machine's CPU with the system
        // under test, and a 50,000-seat map is tens of kilobytes of JSON.
        return None;
    }
    free_seats(&body?)
}

/// The part of a seat-map answer (`{"dt": .., "seat_map": ..}`) the generator reads.
#[derive(serde::Deserialize)]
struct MapAnswer<'a> {
    #[serde(borrow)]
    seat_map: SeatMapAnswer<'a>,
}

#[derive(serde::Deserialize)]
struct SeatMapAnswer<'a> {
    seat_count: u64,
    /// One character per seat: `f` free, `h` held, `s` sold, `x` not for sale.
    #[serde(borrow)]
    seat_states: std::borrow::Cow<'a, str>,
}

/// Free seats of a seat-map answer: the `f`s of `seat_map.seat_states` (ticketd's and the
/// peers' alike); None when the answer is not a seat map of `seat_count` seats.
fn free_seats(body: &[u8]) -> Option<u64> {
    let m = serde_json::from_slice::<MapAnswer<'_>>(body).ok()?.seat_map;
    let states = m.seat_states.as_bytes();
    (states.len() as u64 == m.seat_count)
        .then(|| states.iter().filter(|&&c| c == b'f').count() as u64)
}

/// One unit of load of the chosen flow; `due` is its intended start.
async fn unit_of_load(
    http: &Http,
    args: &Args,
    i: u64,
    due: Instant,
    start: Instant,
    stats: &Mutex<Stats>,
) {
    match args.flow {
        Flow::Request => {
            one(http, args, i, due, start, stats).await;
        }
        Flow::Buy => {
            if let Some(answer) = one(http, args, i, due, start, stats).await {
                if unit(args, i, 1) < args.buy_fraction {
                    buy(http, args, i, answer, stats).await;
                }
            }
        }
        Flow::Onsale => {
            // The visit's first request is due on arrival: a stalled server shows as latency.
            read_map(http, args, due, Some(stats)).await;
            // Deciding: the map again every poll period. Arrivals stop at the run's end; a
            // visit under way finishes on its own time (at most 2x `--think-ms` later): cutting
            // every visit's decision to the end would send all their holds at once.
            let think =
                Duration::from_millis((unit(args, i, 2) * 2.0 * args.think_ms as f64) as u64);
            let decided = Instant::now() + think;
            let poll = Duration::from_millis(args.poll_ms.max(100));
            while Instant::now() + poll < decided {
                tokio::time::sleep(poll).await;
                read_map(http, args, Instant::now(), Some(stats)).await;
            }
            tokio::time::sleep_until(decided.into()).await;
            if let Some(answer) = one(http, args, i, Instant::now(), start, stats).await {
                if unit(args, i, 1) < args.buy_fraction {
                    buy(http, args, i, answer, stats).await;
                }
            }
            stats.lock().await.extra.users_done += 1;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // rustls's crypto provider for the whole process (ring): reqwest and lettre take none of
    // their own.
    ticketd_raft::tls::install_provider();
    // Its recorded seats and timelines grow through the run: no huge-page stalls in the
    // generator either.
    ticketd_cluster::process::disable_huge_pages();
    let args = prepared_args(Args::parse())?;
    let http = Http::new(Duration::from_millis(args.timeout_ms));
    let stats = Arc::new(Mutex::new(Stats::for_run(&args)?));
    // Free seats before the load, to know how many must be free again after it.
    let free_before = match args.seats_back_s {
        Some(_) => Some(
            read_map(&http, &args, Instant::now(), None)
                .await
                .ok_or_else(|| anyhow::anyhow!("cannot read the seat map before the load"))?,
        ),
        None => None,
    };
    let args = Arc::new(args);
    let start = Instant::now();
    let sent = match (args.rate, args.clients) {
        (Some(rate), _) => open_loop(&http, &args, &stats, start, rate).await?,
        (None, Some(clients)) => closed_loop(&http, &args, &stats, start, clients).await,
        (None, None) => 0,
    };
    let elapsed = start.elapsed().as_secs_f64();
    // The load's end, before any wait for the seats to come back (not a stretch without oks).
    let load_us = start.elapsed().as_micros() as u64;
    let (seats_back_ms, seats_free_last) = seats_back(&http, &args, &stats, free_before).await;
    let mut stats = stats.lock().await;
    let run = Run {
        sent,
        elapsed,
        free_before,
        seats_back_ms,
        seats_free_last,
    };
    let summary = Summary::of(&mut stats, load_us);
    if args.json {
        print_json(&args, &stats, &run, &summary);
    } else {
        print_text(&args, &stats, &run, &summary);
    }
    Ok(())
}

/// The arguments with their tokens read or minted, checked.
fn prepared_args(mut args: Args) -> anyhow::Result<Args> {
    if let Some(path) = &args.tokens_file {
        args.tokens = std::fs::read_to_string(path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        anyhow::ensure!(!args.tokens.is_empty(), "no tokens in {}", path.display());
    }
    if let Some(n) = args.mint_users {
        let root =
            ticketd_http::keys::Keys::parse_root(args.root_key.as_deref().unwrap_or_default())?;
        let keys = ticketd_http::keys::Keys::derive(&root, 3600).tokens;
        args.tokens = (1..=n.max(1))
            .map(|i| {
                keys.issue(
                    &format!("{}{i}", args.mint_prefix),
                    ticketd_http::auth::Role::User,
                )
                .0
            })
            .collect();
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
    anyhow::ensure!(
        args.flow == Flow::Request || args.dt_url.is_some(),
        "the buy and onsale flows need --dt-url"
    );
    anyhow::ensure!(
        args.seats_back_s.is_none() || args.dt_url.is_some(),
        "--seats-back-s needs --dt-url"
    );
    Ok(args)
}

impl Stats {
    /// Empty statistics for the run `args` describes.
    fn for_run(args: &Args) -> anyhow::Result<Self> {
        Ok(Stats {
            hist: Histogram::new_with_bounds(1, 120_000_000, 3)?,
            tally: Tally::default(),
            ok_at_us: Vec::new(),
            last_conflict_us: 0,
            placed: Vec::new(),
            bought: Vec::new(),
            purchase_hist: Histogram::new_with_bounds(1, 120_000_000, 3)?,
            map_hist: Histogram::new_with_bounds(1, 120_000_000, 3)?,
            all_hist: Histogram::new_with_bounds(1, 120_000_000, 3)?,
            extra: Extra::default(),
            timeline: match (args.seconds.saturating_mul(1000)).checked_div(args.timeline_ms) {
                None => Vec::new(),
                Some(slices) => {
                    vec![(0, 0, 0); (slices.saturating_add(1) as usize).min(TIMELINE_SLICES_MAX)]
                }
            },
        })
    }
}

/// Open loop: requests sent at `rate` per second from `start`, whatever the answers; how many
/// were sent.
async fn open_loop(
    http: &Http,
    args: &Arc<Args>,
    stats: &Arc<Mutex<Stats>>,
    start: Instant,
    rate: u64,
) -> anyhow::Result<u64> {
    let end = start + Duration::from_secs(args.seconds);
    let mut sent = 0u64;
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
            unit_of_load(&http, &args, i, due, start, &stats).await;
            drop(permit);
        });
        sent += 1;
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(sent)
}

/// Closed loop: `clients` clients each sending its next request when the last is answered;
/// how many were sent.
async fn closed_loop(
    http: &Http,
    args: &Arc<Args>,
    stats: &Arc<Mutex<Stats>>,
    start: Instant,
    clients: usize,
) -> u64 {
    let end = start + Duration::from_secs(args.seconds);
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
                unit_of_load(&http, &args, i, Instant::now(), start, &stats).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    counter
        .load(std::sync::atomic::Ordering::Relaxed)
        .min(args.requests_max)
}

/// Every seat not bought free again: polled (every 100 ms, bounded) from the end of the load;
/// how long it took, and the last free count read (why the seats did not all come back).
async fn seats_back(
    http: &Http,
    args: &Args,
    stats: &Mutex<Stats>,
    free_before: Option<u64>,
) -> (Option<f64>, Option<u64>) {
    match (args.seats_back_s, free_before) {
        (Some(wait_s), Some(before)) => {
            let bought = stats.lock().await.extra.seats_bought;
            let load_end = Instant::now();
            let deadline = load_end + Duration::from_secs(wait_s);
            let mut back = None;
            let mut last = None;
            while Instant::now() < deadline {
                let free = read_map(http, args, Instant::now(), None).await;
                last = free.or(last);
                if free == Some(before.saturating_sub(bought)) {
                    back = Some(load_end.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (back, last)
        }
        _ => (None, None),
    }
}

/// What a run did, besides its statistics.
struct Run {
    sent: u64,
    elapsed: f64,
    free_before: Option<u64>,
    seats_back_ms: Option<f64>,
    seats_free_last: Option<u64>,
}

/// The figures a run's report derives from its statistics.
struct Summary {
    done: u64,
    max_ok_gap_ms: f64,
    last_ok_s: f64,
    ok_per_s_to_last_ok: f64,
    seats_placed: usize,
    seats_placed_twice: usize,
    seats_bought_twice: usize,
    /// [requests, mean ms, max ms] per slice of intended send time.
    timeline: Vec<[f64; 3]>,
}

/// A quantile of `histogram`, in ms.
fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

impl Summary {
    /// The figures of a load that lasted `load_us` from its start.
    fn of(stats: &mut Stats, load_us: u64) -> Self {
        // The longest stretch without an ok answer, the run's start and end included; the end is
        // left out when conflicts came after the last ok (the dt sold out: nothing was down).
        stats.ok_at_us.sort_unstable();
        let last_ok_us = stats.ok_at_us.last().copied().unwrap_or(0);
        let end_us = if stats.last_conflict_us > last_ok_us && last_ok_us > 0 {
            last_ok_us
        } else {
            load_us.max(last_ok_us)
        };
        let mut last = 0;
        let mut gap_us = 0;
        for &t in stats.ok_at_us.iter().chain(std::iter::once(&end_us)) {
            gap_us = gap_us.max(t - last);
            last = t;
        }
        let max_ok_gap_ms = gap_us as f64 / 1000.0;
        // The rate while there was something to sell: a storm that sells the dt out answers
        // conflicts after its last ok, which would dilute a rate over the whole run.
        let last_ok_s = stats.ok_at_us.last().map_or(0.0, |&t| t as f64 / 1e6);
        let ok_per_s_to_last_ok = if last_ok_s > 0.0 {
            stats.tally.ok as f64 / last_ok_s
        } else {
            0.0
        };
        let seats_placed = stats.placed.len();
        stats.placed.sort_unstable();
        stats.placed.dedup();
        let seats_placed_twice = seats_placed - stats.placed.len();
        let bought_n = stats.bought.len();
        stats.bought.sort_unstable();
        stats.bought.dedup();
        let seats_bought_twice = bought_n - stats.bought.len();
        // [requests, mean ms, max ms] per slice of intended send time.
        let timeline: Vec<[f64; 3]> = stats
            .timeline
            .iter()
            .map(|&(n, sum, max)| {
                let mean = if n == 0 {
                    0.0
                } else {
                    sum as f64 / n as f64 / 1000.0
                };
                [n as f64, mean, max as f64 / 1000.0]
            })
            .collect();
        let tally = &stats.tally;
        Summary {
            done: tally.ok + tally.conflict + tally.unknown + tally.other + tally.transport,
            max_ok_gap_ms,
            last_ok_s,
            ok_per_s_to_last_ok,
            seats_placed,
            seats_placed_twice,
            seats_bought_twice,
            timeline,
        }
    }
}

/// The run's report as one JSON object.
fn print_json(args: &Args, s: &Stats, run: &Run, summary: &Summary) {
    let t = &s.tally;
    let h = &s.hist;
    let elapsed = run.elapsed;
    let q = |p: f64| quantile_ms(h, p);
    let pq = |p: f64| quantile_ms(&s.purchase_hist, p);
    let mq = |p: f64| quantile_ms(&s.map_hist, p);
    let timeline = &summary.timeline;
    println!(
        "{}",
        serde_json::json!({
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "offered_per_s": args.rate, "clients": args.clients, "sent": run.sent, "completed": summary.done,
            "elapsed_s": elapsed, "accepted_per_s": t.ok as f64 / elapsed,
            "ok": t.ok, "conflict": t.conflict, "unknown": t.unknown, "other": t.other, "other_statuses": t.other_statuses, "transport_errors": t.transport,
            "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "p999_ms": q(0.999), "max_ms": h.max() as f64 / 1000.0,
            "max_ok_gap_ms": summary.max_ok_gap_ms, "last_ok_s": summary.last_ok_s, "ok_per_s_to_last_ok": summary.ok_per_s_to_last_ok, "seats_placed": summary.seats_placed, "seats_placed_twice": summary.seats_placed_twice,
            "flow": format!("{:?}", args.flow).to_lowercase(),
            "purchases": {"ok": s.extra.purchase_ok, "per_s": s.extra.purchase_ok as f64 / elapsed, "failed": s.extra.purchase_failed, "transport_errors": s.extra.purchase_transport, "seats_bought": s.extra.seats_bought,
                          "p50_ms": pq(0.5), "p99_ms": pq(0.99), "max_ms": s.purchase_hist.max() as f64 / 1000.0},
            "map_reads": {"ok": s.extra.map_ok, "failed": s.extra.map_failed, "p50_ms": mq(0.5), "p99_ms": mq(0.99)},
            "users_done": s.extra.users_done, "users_per_s": s.extra.users_done as f64 / elapsed,
            "all_p99_ms": quantile_ms(&s.all_hist, 0.99),
            "timeline": if timeline.is_empty() { serde_json::Value::Null } else { serde_json::json!({"slice_ms": args.timeline_ms, "slices": timeline}) },
            "seats_bought_twice": summary.seats_bought_twice, "seats_free_before": run.free_before, "seats_back_ms": run.seats_back_ms, "seats_free_last": run.seats_free_last,
        })
    );
}

/// The run's report as lines of text.
fn print_text(args: &Args, s: &Stats, run: &Run, summary: &Summary) {
    let t = &s.tally;
    let h = &s.hist;
    let (sent, done, elapsed) = (run.sent, summary.done, run.elapsed);
    let q = |p: f64| quantile_ms(h, p);
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
    println!(
        "longest stretch without an ok answer {:.1} ms; seats placed {}, placed twice {}",
        summary.max_ok_gap_ms, summary.seats_placed, summary.seats_placed_twice
    );
    if args.flow != Flow::Request {
        println!(
            "purchases ok {} ({:.0}/s, p99 {:.2} ms) failed {:?}, seats bought twice {}; seat maps read {} (p99 {:.2} ms); users done {}; p99 of all requests {:.2} ms",
            s.extra.purchase_ok,
            s.extra.purchase_ok as f64 / elapsed,
            quantile_ms(&s.purchase_hist, 0.99),
            s.extra.purchase_failed,
            summary.seats_bought_twice,
            s.extra.map_ok,
            quantile_ms(&s.map_hist, 0.99),
            s.extra.users_done,
            quantile_ms(&s.all_hist, 0.99)
        );
    }
    for (i, [n, mean, max]) in summary.timeline.iter().enumerate() {
        println!(
            "sent at {:>7.1} s: {n:>6} requests, mean {mean:>8.2} ms, max {max:>8.2} ms",
            (i as u64 * args.timeline_ms) as f64 / 1000.0
        );
    }
    if let Some(ms) = run.seats_back_ms {
        println!("every seat not bought free again {ms:.0} ms after the load");
    } else if args.seats_back_s.is_some() {
        println!("seats not all free again within --seats-back-s");
    }
}
