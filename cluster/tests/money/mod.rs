//! Shared by the saga, notification and revenue tests: a cluster whose nodes run the background
//! worker, a catalogue written straight through the cluster, HTTP helpers, the payment
//! simulator's books, and the money check every such test ends with.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use ticketd_money::provider::{Intent, IntentPage, IntentStatus};
use ticketd_raft::client::{ClusterClient, Consistency};
use ticketd_store::command::OrderView;
use ticketd_store::types::{
    Contact, Profile, ReminderPreference, RowDef, SeatDef, SeatingMap, SectionDef, SellerPlan,
    TierSpec,
};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};
use ticketd_testkit::cluster::{Launch, NodeOpts, Placement, TestCluster};

use super::common::{sim_bin, ticketctl_bin, ticketd_bin, ApiProcess};

/// Polls `cond` every 100 ms until it gives a value, or fails after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut cond: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match cond().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = e.to_string(),
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: not reached within {timeout:?} (last error: {last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_addr() -> anyhow::Result<String> {
    ticketd_testkit::cluster::free_addr()
}

/// The worker settings of a test cluster: environment of every node.
pub fn worker_env(
    payments: &str,
    smtp_port: Option<u16>,
    sms: Option<&str>,
    grace_ms: u64,
    reconcile_period_ms: u64,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("TICKETD_PAYMENTS".to_string(), payments.to_string()),
        ("TICKETD_PAYMENTS_TIMEOUT_MS".into(), "2000".into()),
        ("TICKETD_EXPIRE_PERIOD_MS".into(), "1000".into()),
        (
            "TICKETD_RECONCILE_PERIOD_MS".into(),
            reconcile_period_ms.to_string(),
        ),
        ("TICKETD_RECONCILE_GRACE_MS".into(), grace_ms.to_string()),
        ("TICKETD_DISPATCH_PERIOD_MS".into(), "300".into()),
    ];
    if let Some(p) = smtp_port {
        env.push(("TICKETD_SMTP_HOST".into(), "127.0.0.1".into()));
        env.push(("TICKETD_SMTP_PORT".into(), p.to_string()));
        env.push(("TICKETD_SMTP_FROM".into(), "tickets@ticketd.example".into()));
    }
    if let Some(s) = sms {
        env.push(("TICKETD_SMS".into(), s.to_string()));
    }
    env
}

/// A 3-node cluster whose nodes run the background worker with `env`.
pub async fn worker_cluster(env: Vec<(String, String)>) -> anyhow::Result<TestCluster> {
    TestCluster::start_placed(&ticketd_bin(), 3, NodeOpts::default(), &|_| {
        Ok(Placement {
            addr: free_addr()?,
            metrics_addr: free_addr()?,
            launch: Launch {
                prefix: vec![],
                env: env.clone(),
            },
        })
    })
    .await
}

/// Writes `cmd`; an `AlreadyExists` counts as done (the test data is written once).
pub async fn put(c: &ClusterClient, key: &str, cmd: Command) -> anyhow::Result<()> {
    match c.write("test-setup", key, &cmd).await?.reply.outcome {
        Outcome::Done(_)
        | Outcome::Rejected {
            code: Rejection::AlreadyExists,
            ..
        } => Ok(()),
        Outcome::Rejected { code, detail } => anyhow::bail!("{key}: {} {detail}", code.code()),
    }
}

/// Price of every test ticket, minor units (EUR).
pub const PRICE: i64 = 10_000;
/// The test seller's fee, basis points: 5 % (500 minor units a ticket).
pub const FEE_BPS: u32 = 500;

/// A seller, a 40-seat venue and a published dt of one event, on sale now, every seat at
/// [`PRICE`], starting at `starts_at_ms`.
pub async fn catalogue(
    c: &ClusterClient,
    seller: &str,
    dt_id: &str,
    starts_at_ms: i64,
) -> anyhow::Result<()> {
    put(
        c,
        &format!("seller-{seller}"),
        Command::CreateSeller {
            seller_id: seller.into(),
            name: format!("Seller {seller}"),
            fee_bps: FEE_BPS,
            plan: SellerPlan::Standard,
        },
    )
    .await?;
    let venue = format!("venue-{dt_id}");
    put(
        c,
        &venue,
        Command::CreateVenue {
            venue_id: venue.clone(),
            name: "Test Hall".into(),
            city: "Oslo".into(),
        },
    )
    .await?;
    let seating_map = SeatingMap {
        sections: vec![SectionDef {
            section_id: "A".into(),
            name: "Stalls".into(),
            rows: (0..4)
                .map(|r| RowDef {
                    label: (r + 1).to_string(),
                    seats: (0..10)
                        .map(|s| SeatDef {
                            number: (s + 1).to_string(),
                            x: s * 4,
                            y: r * 4,
                        })
                        .collect(),
                })
                .collect(),
        }],
        ga_areas: vec![],
    };
    put(
        c,
        &format!("layout-{venue}"),
        Command::SetVenueLayout {
            venue_id: venue.clone(),
            address: "Storgata 1, Oslo".into(),
            geo: Default::default(),
            seating_map,
        },
    )
    .await?;
    let event = format!("event-{dt_id}");
    put(
        c,
        &event,
        Command::CreateEvent {
            event_id: event.clone(),
            seller_id: seller.into(),
            title: format!("Test Night {dt_id}"),
            description: "A test event".into(),
            category: "concert".into(),
            performers: vec!["The Testers".into()],
        },
    )
    .await?;
    put(
        c,
        &format!("dt-{dt_id}"),
        Command::CreateDt {
            dt_id: dt_id.into(),
            event_id: event.clone(),
            venue_id: venue,
            starts_at_ms,
            time_zone: "Europe/Oslo".into(),
            tiers: vec![TierSpec {
                tier_id: "std".into(),
                name: "Standard".into(),
                price_minor: PRICE,
                currency: "EUR".into(),
                sections: vec!["A".into()],
                seat_ranges: vec![],
                ga_areas: vec![],
            }],
            sale_starts_at_ms: 0,
            sale_ends_at_ms: starts_at_ms,
        },
    )
    .await?;
    put(
        c,
        &format!("publish-{dt_id}"),
        Command::PublishDt {
            dt_id: dt_id.into(),
        },
    )
    .await
}

/// The event id of [`catalogue`]'s dt.
pub fn event_of(dt_id: &str) -> String {
    format!("event-{dt_id}")
}

/// A user with an email, a phone and reminder preferences.
pub async fn user(
    c: &ClusterClient,
    id: &str,
    email: &str,
    reminder: ReminderPreference,
) -> anyhow::Result<()> {
    let cmd = Command::UpsertUser {
        user_id: id.into(),
        profile: Profile {
            first_name: "Test".into(),
            last_name: id.into(),
            ..Profile::default()
        },
        contact: Contact {
            email: email.into(),
            phone: "+4712345678".into(),
        },
        reminder,
        payment_token_sealed: None,
    };
    let w = c.write("test-setup", &format!("user-{id}"), &cmd).await?;
    anyhow::ensure!(matches!(w.reply.outcome, Outcome::Done(_)), "user {id}");
    Ok(())
}

/// POSTs JSON with a bearer token and an idempotency key: (status, body). A connection error is
/// status 0 (the API process died).
pub async fn post(api: &ApiProcess, path: &str, tok: &str, key: &str, body: Value) -> (u16, Value) {
    match api
        .http
        .post(api.url(path))
        .bearer_auth(tok)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// GETs with a bearer token: (status, body).
pub async fn get(api: &ApiProcess, path: &str, tok: &str) -> anyhow::Result<(u16, Value)> {
    let r = api.http.get(api.url(path)).bearer_auth(tok).send().await?;
    let s = r.status().as_u16();
    Ok((s, r.json::<Value>().await.unwrap_or(Value::Null)))
}

/// Holds `seats` of `dt_id` for the token's user: (hold id, total).
pub async fn hold(
    api: &ApiProcess,
    tok: &str,
    dt_id: &str,
    key: &str,
    seats: &[u32],
) -> anyhow::Result<(String, i64)> {
    let path = format!("/v1/events/{}/dts/{dt_id}/holds", event_of(dt_id));
    let (s, v) = post(api, &path, tok, key, json!({ "seats": seats })).await;
    anyhow::ensure!(s == 201, "hold {key}: {s} {v}");
    anyhow::ensure!(v["status"] == "live", "hold {key}: {v}");
    Ok((
        v["hold_id"].as_str().unwrap_or_default().to_string(),
        v["total_minor"].as_i64().unwrap_or_default(),
    ))
}

/// Buys a hold: (status, body); status 0 when the API process died.
pub async fn buy(
    api: &ApiProcess,
    tok: &str,
    dt_id: &str,
    key: &str,
    hold_id: &str,
    total: i64,
    pm: &str,
) -> (u16, Value) {
    let path = format!("/v1/events/{}/dts/{dt_id}", event_of(dt_id));
    let body =
        json!({ "hold_id": hold_id, "expected_total_minor": total, "payment_method_token": pm });
    post(api, &path, tok, key, body).await
}

/// The payment simulator's HTTP API, for the test's own bookkeeping.
pub struct PaysimBooks {
    base: String,
    http: reqwest::Client,
}

impl PaysimBooks {
    /// The books of the simulator at `addr`.
    pub fn new(addr: &str) -> Self {
        ticketd_raft::tls::install_provider(); // reqwest takes the process's ring provider
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// Every intent, oldest first.
    pub async fn intents(&self) -> anyhow::Result<Vec<Intent>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/payment_intents?created_gte=0&limit=100", self.base);
            if let Some(a) = &after {
                url.push_str(&format!("&starting_after={a}"));
            }
            let page: IntentPage = self.http.get(url).send().await?.json().await?;
            after = page.data.last().map(|i| i.id.clone());
            out.extend(page.data);
            if !page.has_more {
                return Ok(out);
            }
        }
    }

    /// The intents whose metadata names `hold_id`.
    pub async fn for_hold(&self, hold_id: &str) -> anyhow::Result<Vec<Intent>> {
        Ok(self
            .intents()
            .await?
            .into_iter()
            .filter(|i| i.metadata.get("hold_id").map(String::as_str) == Some(hold_id))
            .collect())
    }

    /// Queues `count` faults of kind `fault` for the next calls of `op`.
    pub async fn fault(&self, op: &str, fault: &str, count: usize) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/_control/faults", self.base))
            .json(&json!({ "op": op, "fault": fault, "count": count }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "fault injection refused");
        Ok(())
    }
}

/// Every order of `users`.
pub async fn orders(c: &ClusterClient, users: &[&str]) -> anyhow::Result<Vec<OrderView>> {
    let mut out = Vec::new();
    for u in users {
        let q = Query::UserOrders {
            user_id: u.to_string(),
            limit: 500,
        };
        match c.read(&q, Consistency::Linearizable).await?.result {
            QueryResult::Orders(o) => out.extend(o),
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    Ok(out)
}

/// The order (with tickets) the store made of `hold_id`, if any.
pub async fn order_of_hold(c: &ClusterClient, hold_id: &str) -> anyhow::Result<Option<OrderView>> {
    let q = Query::GetHold {
        hold_id: hold_id.into(),
    };
    let QueryResult::Hold(Some(h)) = c.read(&q, Consistency::Linearizable).await?.result else {
        anyhow::bail!("no hold {hold_id}");
    };
    let ticketd_store::types::HoldStatus::Purchased { order_id } = h.status else {
        return Ok(None);
    };
    match c
        .read(&Query::GetOrder { order_id }, Consistency::Linearizable)
        .await?
        .result
    {
        QueryResult::Order(o) => Ok(o),
        other => anyhow::bail!("unexpected {other:?}"),
    }
}

/// How a purchase attempt ended once everything settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// An order with its tickets, its payment captured (net of refunds owed back).
    TicketsAndCaptured,
    /// No order; every authorization voided (or nothing authorized).
    NoTicketsVoided,
    /// The order was canceled or refunded: no valid ticket, the money refunded.
    CanceledAndRefunded,
}

/// The ending of the purchase of `hold_id`, or why it is not settled yet.
pub async fn ending(
    c: &ClusterClient,
    books: &PaysimBooks,
    hold_id: &str,
) -> anyhow::Result<Result<Ending, String>> {
    let intents = books.for_hold(hold_id).await?;
    let order = order_of_hold(c, hold_id).await?;
    Ok(match order {
        None => {
            if intents.iter().all(|i| i.status == IntentStatus::Canceled) {
                Ok(Ending::NoTicketsVoided)
            } else {
                Err(format!("no order, intents {intents:?}"))
            }
        }
        Some(v) => {
            let Some(i) = intents.iter().find(|i| i.id == v.order.payment_ref) else {
                return Ok(Err(format!("order {} has no intent", v.order.order_id)));
            };
            let owed = v.order.total_minor - v.order.refunded_minor;
            let others_voided = intents
                .iter()
                .filter(|x| x.id != i.id)
                .all(|x| x.status == IntentStatus::Canceled);
            let valid = v
                .tickets
                .iter()
                .any(|t| t.status == ticketd_store::types::TicketStatus::Valid);
            if i.amount_captured != v.order.total_minor || i.net_captured() != owed {
                Err(format!(
                    "order {} owes {owed} of {}, intent {i:?}",
                    v.order.order_id, v.order.total_minor
                ))
            } else if !others_voided {
                Err(format!("other intents not voided: {intents:?}"))
            } else if valid {
                Ok(Ending::TicketsAndCaptured)
            } else {
                Ok(Ending::CanceledAndRefunded)
            }
        }
    })
}

/// Waits until the purchase of `hold_id` settles; its ending.
pub async fn settled(
    c: &ClusterClient,
    books: &PaysimBooks,
    hold_id: &str,
    timeout: Duration,
) -> anyhow::Result<Ending> {
    let deadline = Instant::now() + timeout;
    loop {
        let why = match ending(c, books, hold_id).await {
            Ok(Ok(e)) => return Ok(e),
            Ok(Err(why)) => why,
            Err(e) => e.to_string(),
        };
        anyhow::ensure!(
            Instant::now() < deadline,
            "hold {hold_id} not settled within {timeout:?}: {why}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The books balance: captured at the provider (net of refunds) = sum of order totals - refunds
/// owed; no intent outside an order holds money; fees = rate x sales. Returns (captured, fees,
/// sales) in minor units.
pub async fn money_balances(
    c: &ClusterClient,
    books: &PaysimBooks,
    users: &[&str],
) -> anyhow::Result<(i64, i64, i64)> {
    let orders = orders(c, users).await?;
    let intents: BTreeMap<String, Intent> = books
        .intents()
        .await?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let captured: i64 = intents.values().map(Intent::net_captured).sum();
    let owed: i64 = orders
        .iter()
        .map(|o| o.order.total_minor - o.order.refunded_minor)
        .sum();
    anyhow::ensure!(
        captured == owed,
        "captured {captured} != order totals - refunds {owed}"
    );
    for o in &orders {
        let i = intents
            .get(&o.order.payment_ref)
            .ok_or_else(|| anyhow::anyhow!("order {} without intent", o.order.order_id))?;
        anyhow::ensure!(
            i.amount_captured == o.order.total_minor && i.amount_refunded == o.order.refunded_minor,
            "order {:?} vs intent {i:?}",
            o.order
        );
    }
    let in_orders: std::collections::BTreeSet<&str> = orders
        .iter()
        .map(|o| o.order.payment_ref.as_str())
        .collect();
    for i in intents.values() {
        if !in_orders.contains(i.id.as_str()) {
            anyhow::ensure!(
                i.status == IntentStatus::Canceled,
                "intent {} holds money or an authorization without an order: {i:?}",
                i.id
            );
        }
    }
    let sales: i64 = orders.iter().map(|o| o.order.subtotal_minor).sum();
    let fees: i64 = orders.iter().map(|o| o.order.fee_minor).sum();
    anyhow::ensure!(
        fees * 10_000 == sales * i64::from(FEE_BPS),
        "fees {fees} != {FEE_BPS} bps x sales {sales}"
    );
    Ok((captured, fees, sales))
}

/// Waits until the books balance (refunds are made by the dispatcher, asynchronously).
pub async fn wait_balanced(
    c: &ClusterClient,
    books: &PaysimBooks,
    users: &[&str],
    timeout: Duration,
) -> anyhow::Result<(i64, i64, i64)> {
    let deadline = Instant::now() + timeout;
    loop {
        match money_balances(c, books, users).await {
            Ok(x) => return Ok(x),
            Err(e) => anyhow::ensure!(
                Instant::now() < deadline,
                "the books do not balance within {timeout:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `ticketctl reconcile -w json` against `c`, as its operator: the leader's report.
pub fn ticketctl_reconcile(c: &TestCluster) -> anyhow::Result<Value> {
    let out = std::process::Command::new(ticketctl_bin())
        .args(c.tls_args(&ticketd_raft::identity::Identity::Admin("dev".into())))
        .args([
            "--endpoints",
            &c.endpoints().join(","),
            "-w",
            "json",
            "reconcile",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ticketctl reconcile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Unix ms now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A real SMTP server (Debian's python3-aiosmtpd, its debugging handler printing every message
/// it receives), killed on drop.
pub struct SmtpSink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
}

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Message-ID` without angle brackets.
    pub id: String,
    /// The subject.
    pub subject: String,
    /// The whole message as printed.
    pub raw: String,
}

impl SmtpSink {
    /// Starts the server on a free port, printing into `dir`; waits (bounded) until it listens.
    pub async fn start(dir: &std::path::Path) -> anyhow::Result<Self> {
        let port = ticketd_testkit::cluster::free_port()?;
        let out = dir.join("smtp.out");
        let child = std::process::Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Debugging",
                "-l",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .env("PYTHONUNBUFFERED", "1")
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("python3-aiosmtpd is needed (scripts/test.sh installs it): {e}")
            })?;
        let sink = Self { port, out, child };
        wait_for(
            "the SMTP server listens",
            Duration::from_secs(10),
            || async {
                Ok(std::net::TcpStream::connect(("127.0.0.1", port))
                    .is_ok()
                    .then_some(()))
            },
        )
        .await?;
        Ok(sink)
    }

    /// Every complete message received so far, in order (redeliveries included).
    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.split("---------- MESSAGE FOLLOWS ----------")
            .skip(1)
            .filter_map(|m| {
                let (raw, _) = m.split_once("------------ END MESSAGE ------------")?;
                let header = |name: &str| {
                    raw.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                Some(Received {
                    id: header("Message-ID:")?
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string(),
                    subject: header("Subject:").unwrap_or_default(),
                    raw: raw.to_string(),
                })
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `ticketd-sim sms` process, killed on drop.
pub struct SmsSim {
    /// Its address.
    pub addr: String,
    child: std::process::Child,
}

impl SmsSim {
    /// Starts the SMS provider simulator on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        let addr = free_addr()?;
        let child = std::process::Command::new(sim_bin())
            .args(["sms", "--listen", &addr])
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let sim = Self { addr, child };
        wait_for(
            "the SMS simulator listens",
            Duration::from_secs(10),
            || async {
                Ok(std::net::TcpStream::connect(&sim.addr)
                    .is_ok()
                    .then_some(()))
            },
        )
        .await?;
        Ok(sim)
    }

    /// (deliveries, distinct message ids) so far.
    pub async fn inbox(&self) -> anyhow::Result<(u64, Vec<String>)> {
        ticketd_raft::tls::install_provider(); // reqwest takes the process's ring provider
        let v: Value = reqwest::get(format!("http://{}/v1/messages", self.addr))
            .await?
            .json()
            .await?;
        let ids = v["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        Ok((v["deliveries"].as_u64().unwrap_or(0), ids))
    }
}

impl Drop for SmsSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The money checker's and the messages checker's inputs, read after a run settled: the
/// provider's books from the simulator itself, the store's orders of `users`, their
/// notifications, the sellers' ledgers.
pub struct Books {
    /// The provider's intents.
    pub intents: Vec<ticketd_checker::money::ProviderIntent>,
    /// The provider's refunds by key.
    pub refunds: Vec<ticketd_checker::money::ProviderRefund>,
    /// The store's side.
    pub store: ticketd_checker::money::StoreBooks,
    /// Every notification of those orders, as the store ends with it.
    pub notes: Vec<ticketd_checker::messages::Note>,
}

/// Reads [`Books`] from the simulator at `books` and the store through `c`.
pub async fn read_books(
    c: &ClusterClient,
    books: &PaysimBooks,
    users: &[&str],
    sellers: &[&str],
) -> anyhow::Result<Books> {
    use ticketd_checker::messages::{Note, NoteEnd};
    use ticketd_checker::money::{ProviderIntent, ProviderRefund, RefundOwed, StoreBooks};
    use ticketd_store::types::{NotificationKind, NotificationStatus};
    let intents = books
        .intents()
        .await?
        .into_iter()
        .map(|i| ProviderIntent {
            hold_id: i.metadata.get("hold_id").cloned(),
            amount: i.amount,
            captured: i.amount_captured,
            refunded: i.amount_refunded,
            voided: i.status == IntentStatus::Canceled,
            id: i.id,
        })
        .collect();
    let refunds: Vec<Value> = books
        .http
        .get(format!("{}/_control/refunds", books.base))
        .send()
        .await?
        .json()
        .await?;
    let refunds = refunds
        .iter()
        .map(|r| ProviderRefund {
            key: r["key"].as_str().unwrap_or_default().to_string(),
            intent_id: r["intent_id"].as_str().unwrap_or_default().to_string(),
            amount: r["amount"].as_i64().unwrap_or(0),
        })
        .collect();
    let orders = orders(c, users).await?;
    let mut store = StoreBooks::default();
    let mut notes = Vec::new();
    for o in &orders {
        let q = Query::OrderNotifications {
            order_id: o.order.order_id.clone(),
        };
        let QueryResult::Notifications(ns) = c.read(&q, Consistency::Linearizable).await?.result
        else {
            anyhow::bail!("unexpected answer to {q:?}");
        };
        for n in ns {
            if let NotificationKind::Refund { amount_minor, .. } = &n.kind {
                store.refunds_owed.push(RefundOwed {
                    notification_id: n.notification_id.clone(),
                    order_id: n.order_id.clone(),
                    amount: *amount_minor,
                });
            }
            let parked = match c
                .read(
                    &Query::DeliveryRetry {
                        notification_id: n.notification_id.clone(),
                    },
                    Consistency::Linearizable,
                )
                .await?
                .result
            {
                QueryResult::Retries(r) => r.first().is_some_and(|(_, r)| r.parked),
                other => anyhow::bail!("unexpected {other:?}"),
            };
            let end = match &n.status {
                NotificationStatus::Pending => NoteEnd::Pending {
                    due_at_ms: n.due_at_ms,
                    parked,
                },
                NotificationStatus::Sent { channel, .. } => {
                    NoteEnd::Sent(channel.split('+').map(str::to_string).collect())
                }
                NotificationStatus::Void { .. } => NoteEnd::Void,
            };
            let kind = match &n.kind {
                NotificationKind::Confirmation => "confirmation",
                NotificationKind::ETickets => "etickets",
                NotificationKind::Reminder => "reminder",
                NotificationKind::Cancellation => "cancellation",
                NotificationKind::Refund { .. } => "refund",
            };
            notes.push(Note {
                id: n.notification_id,
                kind: kind.into(),
                end,
            });
        }
        store
            .seller_of_event
            .entry(o.order.event_id.clone())
            .or_insert_with(String::new);
    }
    for seller in sellers {
        let q = Query::SellerLedger {
            seller_id: seller.to_string(),
            limit: 1,
        };
        let QueryResult::SellerLedger(Some(l)) =
            c.read(&q, Consistency::Linearizable).await?.result
        else {
            anyhow::bail!("no ledger of {seller}");
        };
        let net: i64 = l
            .totals
            .iter()
            .map(|t| t.sales_minor - t.refunds_minor)
            .sum();
        store.seller_net.insert(seller.to_string(), net);
    }
    for (event, seller) in store.seller_of_event.iter_mut() {
        let q = Query::GetEvent {
            event_id: event.clone(),
        };
        if let QueryResult::Event(Some(e)) = c.read(&q, Consistency::Linearizable).await?.result {
            *seller = e.seller_id;
        }
    }
    store.orders = orders;
    Ok(Books {
        intents,
        refunds,
        store,
        notes,
    })
}
