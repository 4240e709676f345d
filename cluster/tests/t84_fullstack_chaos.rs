//! Chaos through the whole stack, short: three nodes with their worker, two API processes, the
//! payment simulator (its books in a file), the SMS simulator and a real SMTP server. Buyers
//! hold and pay with every kind of card (declined, slow, timing out, failing after acting,
//! authorizing another amount), retry with the same key, cancel orders; a seeded nemesis
//! injects provider faults on every operation, restarts the provider, kills API processes
//! (and crashes them after each saga step) and kills nodes, the leader among them. After
//! healing and a bounded settle, the money checker (the provider's books from the simulator
//! itself) and the messages checker (the outbox against what SMTP and SMS received) find
//! nothing wrong, and every fault kind was injected at least once.
//!
//! `TICKETD_FULLSTACK_SECONDS` (default 40) and `TICKETD_FULLSTACK_SEED` (default: random,
//! printed) set the run; `scripts/chaos-long.sh` runs it longer.

mod common;
mod money;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use money::*;
use serde_json::json;
use ticketd_checker::messages::check_messages;
use ticketd_checker::money::{check_money, BuyerAnswers};
use ticketd_http::auth::Role;
use ticketd_store::types::ReminderPreference;

/// Buyers, each its own task.
const BUYERS: usize = 8;
/// Dts on sale (40 seats each): a few, and one more per 20 s of run, so a long run does not
/// sell out early.
fn dts_for(seconds: u64) -> usize {
    3 + (seconds / 20) as usize
}

/// A small deterministic generator (xorshift), seeded per task.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What buyers were told, and what the nemesis did.
#[derive(Default)]
struct Log {
    answers: BuyerAnswers,
    unknown: usize,
    cancels: usize,
    faults: BTreeMap<&'static str, usize>,
}

/// The API processes the buyers pick from; the nemesis swaps them.
struct Apis {
    slots: Mutex<Vec<Arc<ApiProcess>>>,
}

impl Apis {
    fn pick(&self, rng: &mut Rng) -> Arc<ApiProcess> {
        let slots = self.slots.lock().expect("apis lock");
        slots[rng.below(slots.len())].clone()
    }
}

/// One buyer's loop until `stop`: hold a seat, pay with a random card through a random API,
/// retry an unknown answer once with the same key, sometimes cancel what it bought.
async fn buyer(
    (i, dts, seed): (usize, usize, u64),
    apis: Arc<Apis>,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
) {
    const CARDS: &[&str] = &[
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_declined",
        "pm_card_slow",
        "pm_card_timeout",
        "pm_card_fail_after",
        "pm_card_wrong_amount",
    ];
    let mut rng = Rng(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)) | 1);
    let user = format!("chaos-buyer-{i}");
    let tok = token(&user, Role::User);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let dt = format!("dt-chaos-{}", rng.below(dts));
        let seat = rng.below(40) as u32;
        let api = apis.pick(&mut rng);
        let Ok((hold_id, total)) = hold(&api, &tok, &dt, &format!("{user}-h{n}"), &[seat]).await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let card = CARDS[rng.below(CARDS.len())];
        let key = format!("{user}-b{n}");
        let (mut s, mut v) = buy(&api, &tok, &dt, &key, &hold_id, total, card).await;
        if !matches!(s, 201 | 402) {
            // Unknown (no answer, 503): the same request again, through any API.
            let again = apis.pick(&mut rng);
            (s, v) = buy(&again, &tok, &dt, &key, &hold_id, total, card).await;
        }
        let order = v["order_id"].as_str().map(str::to_string);
        {
            let mut l = log.lock().expect("log lock");
            match (s, &order) {
                (201, Some(o)) => {
                    l.answers.acked.insert(hold_id.clone(), o.clone());
                }
                (402, _) => {
                    l.answers.nacked.insert(hold_id.clone());
                }
                _ => l.unknown += 1,
            }
        }
        if let (201, Some(o), 0) = (s, &order, rng.below(4)) {
            let api = apis.pick(&mut rng);
            let path = format!("/v1/orders/{o}/cancel");
            let (c, _) = post(
                &api,
                &path,
                &tok,
                &format!("{key}-cancel"),
                json!({"reason": "chaos"}),
            )
            .await;
            if c == 200 {
                log.lock().expect("log lock").cancels += 1;
            }
        }
    }
}

/// The nemesis's fault kinds, each injected in every round, in a seeded order.
const KINDS: &[&str] = &[
    "provider-fault",
    "provider-restart",
    "api-kill",
    "api-crash-after-authorize",
    "api-crash-after-start",
    "api-crash-after-confirm",
    "node-kill",
    "leader-kill",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_and_messages_survive_faults_through_the_whole_stack() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("TICKETD_FULLSTACK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("TICKETD_FULLSTACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64);
    eprintln!("full-stack chaos: seed {seed} for {seconds} s (TICKETD_FULLSTACK_SEED={seed})");
    let dir = tempfile::tempdir()?;
    let smtp = SmtpSink::start(dir.path()).await?;
    let sms = SmsSim::start().await?;
    let pay_addr = ticketd_testkit::cluster::free_addr()?;
    let pay_state = dir.path().join("paysim.json");
    let mut paysim = Some(start_paysim_on(&pay_addr, Some(&pay_state)).await?);
    let books = PaysimBooks::new(&pay_addr);
    let mut c = worker_cluster(worker_env(
        &pay_addr,
        Some(smtp.port),
        Some(&sms.addr),
        3_000,
        1_000,
    ))
    .await?;
    let client = c.client();

    phase("the catalogue and the buyers");
    // The dts start one after another over the run (30 s after its start and later), so
    // their reminders (30 s before) fall due during it, and their sales close one by one.
    let dts = dts_for(seconds);
    let t0 = now_ms();
    for k in 0..dts {
        let starts_at = t0 + 30_000 + (k as i64 + 1) * seconds as i64 * 1_000 / dts as i64;
        catalogue(&client, "seller-chaos", &format!("dt-chaos-{k}"), starts_at).await?;
    }
    let users: Vec<String> = (0..BUYERS).map(|i| format!("chaos-buyer-{i}")).collect();
    for (i, u) in users.iter().enumerate() {
        let pref = ReminderPreference {
            lead_ms: 30_000,
            email: i % 2 == 0,
            sms: i % 2 == 1,
        };
        user(&client, u, &format!("{u}@example.org"), pref).await?;
    }
    let api_dir = |k: usize| {
        let d = dir.path().join(format!("api-{k}"));
        let _ = std::fs::create_dir_all(&d);
        d
    };
    let pay_flags = ["--payments", pay_addr.as_str()];
    let mut started = 0usize;
    let mut slots = Vec::new();
    for _ in 0..2 {
        started += 1;
        slots.push(Arc::new(
            ApiProcess::start_with(&c, &c.endpoints(), &api_dir(started), &pay_flags).await?,
        ));
    }
    let apis = Arc::new(Apis {
        slots: Mutex::new(slots),
    });

    phase("buyers and the nemesis");
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..BUYERS {
        tasks.push(tokio::spawn(buyer(
            (i, dts, seed),
            apis.clone(),
            log.clone(),
            stop.clone(),
        )));
    }
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut round: Vec<&str> = Vec::new();
    while Instant::now() < deadline {
        if round.is_empty() {
            round = KINDS.to_vec();
            for k in (1..round.len()).rev() {
                round.swap(k, rng.below(k + 1));
            }
        }
        let kind = round.pop().expect("a kind");
        match kind {
            "provider-fault" => {
                let op = ["authorize", "capture", "cancel", "refund"][rng.below(4)];
                let fault = ["fail_before", "fail_after", "timeout", "slow"][rng.below(4)];
                books.fault(op, fault, 1 + rng.below(3)).await?;
            }
            "provider-restart" => {
                drop(paysim.take());
                tokio::time::sleep(Duration::from_millis(300)).await;
                paysim = Some(start_paysim_on(&pay_addr, Some(&pay_state)).await?);
            }
            "api-kill"
            | "api-crash-after-authorize"
            | "api-crash-after-start"
            | "api-crash-after-confirm" => {
                let slot = rng.below(2);
                let mut flags: Vec<&str> = pay_flags.to_vec();
                let fault = match kind {
                    "api-crash-after-authorize" => Some("crash-after:authorize"),
                    "api-crash-after-start" => Some("crash-after:start"),
                    "api-crash-after-confirm" => Some("crash-after:confirm"),
                    _ => None,
                };
                if let Some(f) = fault {
                    flags.extend(["--test-fault", f]);
                }
                let old = apis.slots.lock().expect("apis lock")[slot].clone();
                old.kill9();
                started += 1;
                let fresh = Arc::new(
                    ApiProcess::start_with(&c, &c.endpoints(), &api_dir(started), &flags).await?,
                );
                apis.slots.lock().expect("apis lock")[slot] = fresh.clone();
                if kind != "api-kill" {
                    // The next purchase through it crashes it after that step (exit 86), or
                    // the window ends; then a healthy one takes its place.
                    let until = Instant::now() + Duration::from_secs(4);
                    while fresh.exited().is_none() && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let crashed = fresh.exited().is_some_and(|s| s.code() == Some(86));
                    fresh.kill9();
                    started += 1;
                    let healthy = Arc::new(
                        ApiProcess::start_with(&c, &c.endpoints(), &api_dir(started), &pay_flags)
                            .await?,
                    );
                    apis.slots.lock().expect("apis lock")[slot] = healthy;
                    if !crashed {
                        continue;
                    }
                }
            }
            "node-kill" | "leader-kill" => {
                let leader = c.wait_leader(Duration::from_secs(20)).await?;
                let id = if kind == "leader-kill" {
                    leader
                } else {
                    (1..=3).find(|id| *id != leader).unwrap_or(1)
                };
                c.kill(id)?;
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                c.respawn(id)?;
            }
            _ => unreachable!("every kind is matched"),
        }
        *log.lock()
            .expect("log lock")
            .faults
            .entry(kind)
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(300 + rng.below(700) as u64)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }

    phase("healed: every node up, the provider up; settle within a bound");
    c.wait_leader(Duration::from_secs(20)).await?;
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let answers = log.lock().expect("log lock").answers.clone();
    let settle = Instant::now() + Duration::from_secs(120);
    let (money_report, b) = loop {
        let _ = ticketctl_reconcile(&c);
        let b = read_books(&client, &books, &user_refs, &["seller-chaos"]).await?;
        let report = check_money(&b.intents, &b.refunds, &b.store, &answers);
        let pending = b.notes.iter().any(|n| {
            matches!(n.end, ticketd_checker::messages::NoteEnd::Pending { due_at_ms, parked }
                if !parked && due_at_ms <= now_ms())
        });
        if (report.anomalies.is_empty() && !pending) || Instant::now() > settle {
            break (report, b);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut received: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m.id.trim_end_matches("@ticketd.example").to_string())
        .collect();
    received.extend(sms.inbox().await?.1);
    let messages = check_messages(&b.notes, &received, now_ms());
    let l = log.lock().expect("log lock");
    eprintln!(
        "seed {seed}: acked {}, nacked {}, unknown {}, cancels {}; faults {:?}",
        l.answers.acked.len(),
        l.answers.nacked.len(),
        l.unknown,
        l.cancels,
        l.faults
    );
    eprintln!("money: {}", serde_json::to_string(&money_report)?);
    eprintln!("messages: {}", serde_json::to_string(&messages)?);
    assert!(
        money_report.anomalies.is_empty(),
        "seed {seed}: money anomalies: {:#?}",
        money_report.anomalies
    );
    assert!(
        messages.anomalies.is_empty(),
        "seed {seed}: messages anomalies: {:#?}",
        messages.anomalies
    );
    let missing: BTreeSet<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| l.faults.get(k).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: fault kinds never injected: {missing:?} (a run that injects nothing proves nothing)"
    );
    assert!(
        !l.answers.acked.is_empty() && !l.answers.nacked.is_empty(),
        "seed {seed}: the run needs both sales and refusals"
    );
    Ok(())
}
