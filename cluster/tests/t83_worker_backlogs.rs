//! The leader's worker through backlogs that used to stop it: 20,000 intents in a day, which
//! the reconciler visits from the store's cursor (a pass reads at most 10,000, a new leader goes
//! on where the old one stopped) besides the store's set of unfinished payments; and 600
//! notifications that fail until they are parked, which stand in front of no other.

mod common;
mod money;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use futures::StreamExt as _;
use money::*;
use serde_json::Value;
use ticketd_money::outbound::Outbound;
use ticketd_money::provider::{CreateIntent, HttpProvider, IntentStatus, PaymentProvider};
use ticketd_raft::client::{ClusterClient, Consistency};
use ticketd_store::types::ReminderPreference;
use ticketd_store::{Command, Done, Outcome, Query, QueryResult};

/// Intents created at the provider, none of which the store ever heard of.
const INTENTS: usize = 20_000;
/// Passes the reconciler may take to visit them all.
const PASSES_MAX: usize = 4;
/// Buyers whose mail the SMTP server refuses (451) until they are parked, two messages each.
const FAILING_BUYERS: usize = 300;

/// Writes `cmd` as the test's setup client; what it did.
async fn done(c: &ClusterClient, key: &str, cmd: Command) -> anyhow::Result<Done> {
    match c.write("test-setup", key, &cmd).await?.reply.outcome {
        Outcome::Done(d) => Ok(d),
        Outcome::Rejected { code, detail } => anyhow::bail!("{key}: {} {detail}", code.code()),
    }
}

/// Holds seat `seat` of `dt` for `user`; the hold's total.
async fn hold_seat(
    c: &ClusterClient,
    hold_id: &str,
    dt: &str,
    user: &str,
    seat: u32,
) -> anyhow::Result<i64> {
    let held = done(
        c,
        &format!("hold-{hold_id}"),
        Command::HoldSeats {
            hold_id: hold_id.into(),
            dt_id: dt.into(),
            user_id: user.into(),
            seats: vec![seat],
            ga: vec![],
            hold_ttl_ms: None,
        },
    )
    .await?;
    match held {
        Done::HoldPlaced { total_minor, .. } => Ok(total_minor),
        other => anyhow::bail!("{other:?}"),
    }
}

/// A purchase as the API's saga records it (the provider is not involved): hold, payment
/// started, order confirmed; its confirmation and e-tickets join the outbox.
async fn purchase(
    c: &ClusterClient,
    name: &str,
    dt: &str,
    user: &str,
    seat: u32,
) -> anyhow::Result<()> {
    let hold_id = format!("h-{name}");
    let total = hold_seat(c, &hold_id, dt, user, seat).await?;
    let payment_ref = format!("pi-{name}");
    done(
        c,
        &format!("start-{name}"),
        Command::StartPayment {
            hold_id: hold_id.clone(),
            user_id: user.into(),
            payment_ref: payment_ref.clone(),
            amount_minor: total,
            currency: "EUR".into(),
        },
    )
    .await?;
    done(
        c,
        &format!("confirm-{name}"),
        Command::ConfirmPurchase {
            hold_id,
            order_id: format!("o-{name}"),
            payment_ref,
            amount_minor: total,
            currency: "EUR".into(),
            secret_seed: vec![7; 32],
        },
    )
    .await?;
    Ok(())
}

async fn read(c: &ClusterClient, q: Query) -> anyhow::Result<QueryResult> {
    Ok(c.read(&q, Consistency::Linearizable).await?.result)
}

/// Waits until every node applied the cluster version this binary supports (init raised it).
async fn at_binary_version(c: &ticketd_testkit::cluster::TestCluster) -> anyhow::Result<()> {
    let want = u64::from(ticketd_store::version::BINARY_VERSION);
    wait_for(
        "the new cluster at this binary's version",
        Duration::from_secs(30),
        || async {
            for id in 1..=3 {
                if u64::from(c.status(id).await?.cluster_version) != want {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await
}

fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_visits_every_intent_of_a_busy_day_across_a_leader_change(
) -> anyhow::Result<()> {
    let (pay_addr, _paysim) = start_paysim().await?;
    let books = PaysimBooks::new(&pay_addr);
    // Passes only on demand (ticketctl reconcile), so the test counts them.
    let grace_ms = 2_000;
    let mut c = worker_cluster(worker_env(&pay_addr, None, None, grace_ms, 3_600_000)).await?;
    at_binary_version(&c).await?;
    let client = c.client();

    phase("a payment the provider never got: started in the store, no intent");
    catalogue(
        &client,
        "seller-backlog",
        "dt-backlog",
        now_ms() + 30 * 86_400_000,
    )
    .await?;
    user(
        &client,
        "buyer-lost",
        "lost@example.org",
        ReminderPreference::default(),
    )
    .await?;
    let total = hold_seat(&client, "h-lost", "dt-backlog", "buyer-lost", 0).await?;
    done(
        &client,
        "start-lost",
        Command::StartPayment {
            hold_id: "h-lost".into(),
            user_id: "buyer-lost".into(),
            payment_ref: "pi_lost".into(),
            amount_minor: total,
            currency: "EUR".into(),
        },
    )
    .await?;

    phase("20,000 authorized intents the store never heard of");
    let provider = HttpProvider::new(
        Outbound {
            target: pay_addr.clone(),
            secret_key: None,
            ca: None,
        },
        Duration::from_secs(10),
    )?;
    let created: Vec<_> = futures::stream::iter(0..INTENTS)
        .map(|i| {
            let provider = &provider;
            async move {
                let req = CreateIntent {
                    amount: 1_000,
                    currency: "EUR".into(),
                    payment_method: "pm_card_visa".into(),
                    metadata: [("hold_id".to_string(), format!("h-gone-{i}"))].into(),
                };
                provider.authorize(&format!("busy-{i}"), &req).await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut ids: Vec<String> = Vec::with_capacity(INTENTS);
    let mut newest_ms = 0;
    for intent in created {
        let intent = intent?;
        newest_ms = newest_ms.max(intent.created_ms);
        ids.push(intent.id);
    }
    ids.sort();
    // The grace period of the newest intent ends: a deadline from the provider's own times.
    let past_grace = newest_ms + grace_ms as i64 + 500;
    while now_ms() < past_grace {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    phase("passes on demand until every intent was visited; the leader dies after the first");
    let mut voided = 0u64;
    let mut reports = Vec::new();
    for pass in 1..=PASSES_MAX {
        let report = ticketctl_reconcile(&c)?["reconcile"].clone();
        eprintln!(
            "pass {pass}: seen {}, voided {}, cursor steps {}, cursor {}, unfinished seen {}, \
             settled {}, failed without intent {}, errors {}",
            count(&report, "intents_seen"),
            count(&report, "voided"),
            count(&report, "cursor_steps"),
            report["cursor"],
            count(&report, "unfinished_seen"),
            count(&report, "unfinished_settled"),
            count(&report, "failed_without_intent"),
            report["errors"]
        );
        voided += count(&report, "voided");
        let done_walking = report["cursor"]["intent_id"].as_str() == ids.last().map(String::as_str);
        let nothing_unfinished = count(&report, "unfinished_seen") == 0;
        reports.push(report);
        if pass == 1 {
            let cursor = &reports[0]["cursor"]["intent_id"];
            assert_eq!(
                cursor.as_str(),
                Some(ids[ticketd_money::reconciler::PAGES_MAX as usize * 100 - 1].as_str()),
                "a pass walks at most 100 pages of 100 new intents"
            );
            let leader = c.wait_leader(Duration::from_secs(10)).await?;
            c.kill(leader)?;
            eprintln!("leader {leader} killed");
            c.wait_leader(Duration::from_secs(20)).await?;
        }
        if done_walking && voided >= INTENTS as u64 && nothing_unfinished {
            break;
        }
    }
    assert!(
        reports.len() <= PASSES_MAX,
        "every intent visited within {PASSES_MAX} passes"
    );
    assert_eq!(
        voided, INTENTS as u64,
        "each intent voided once: {reports:#?}"
    );
    assert_eq!(
        count(&reports[1], "cursor_steps"),
        100,
        "the new leader went on from the cursor, not from the look-back"
    );
    let without_intent: u64 = reports
        .iter()
        .map(|r| count(r, "failed_without_intent"))
        .sum();
    assert_eq!(
        without_intent, 1,
        "the payment the provider never got is failed"
    );

    phase("the provider's own books: every intent voided; the store: nothing unfinished");
    let intents = books.intents().await?;
    assert_eq!(intents.len(), INTENTS);
    let not_voided: Vec<_> = intents
        .iter()
        .filter(|i| i.status != IntentStatus::Canceled)
        .map(|i| i.id.clone())
        .collect();
    assert!(
        not_voided.is_empty(),
        "not voided: {:?}",
        &not_voided[..not_voided.len().min(10)]
    );
    let QueryResult::Unfinished(left) = read(
        &client,
        Query::UnfinishedPayments {
            after: None,
            limit: 10,
        },
    )
    .await?
    else {
        anyhow::bail!("unexpected answer");
    };
    assert!(left.is_empty(), "{left:?}");
    match read(
        &client,
        Query::GetPayment {
            payment_ref: "pi_lost".into(),
        },
    )
    .await?
    {
        QueryResult::Payment(Some(p)) => {
            assert!(
                matches!(p.status, ticketd_store::types::PaymentStatus::Failed { .. }),
                "{p:?}"
            )
        }
        other => anyhow::bail!("{other:?}"),
    }
    Ok(())
}

/// An SMTP server (aiosmtpd) that refuses, with a 451, every recipient whose address starts
/// with `fail`, and prints one line per refusal and per delivered message id.
const FUSSY_SMTP: &str = r#"
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("fail"):
            print("REFUSED", address, flush=True)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.decode("utf8", "replace").splitlines():
            if line.lower().startswith("message-id:"):
                print("DELIVERED", line.split(":", 1)[1].strip().strip("<>"), flush=True)
                break
        return "250 OK"
"#;

struct FussySmtp {
    port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
}

impl FussySmtp {
    async fn start(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::write(dir.join("fussy.py"), FUSSY_SMTP)?;
        let port = ticketd_testkit::cluster::free_port()?;
        let out = dir.join("fussy.out");
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-c", "fussy.Handler", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .env("PYTHONPATH", dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(dir.join("fussy.err"))?)
            .spawn()
            .map_err(|e| anyhow::anyhow!("python3-aiosmtpd is needed: {e}"))?;
        let smtp = Self { port, out, child };
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
        Ok(smtp)
    }

    /// (refusals, delivered message ids).
    fn seen(&self) -> (usize, BTreeSet<String>) {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let refused = text.lines().filter(|l| l.starts_with("REFUSED ")).count();
        let delivered = text
            .lines()
            .filter_map(|l| l.strip_prefix("DELIVERED "))
            .map(str::to_string)
            .collect();
        (refused, delivered)
    }
}

impl Drop for FussySmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every parked notification, paging through the store's failed deliveries.
async fn parked(c: &ClusterClient) -> anyhow::Result<usize> {
    let mut after = None;
    let mut n = 0;
    for _ in 0..100 {
        let QueryResult::Retries(page) = read(
            c,
            Query::DeliveryRetries {
                after: after.clone(),
                parked_only: true,
                limit: 500,
            },
        )
        .await?
        else {
            anyhow::bail!("unexpected answer");
        };
        n += page.len();
        match page.last() {
            Some((id, _)) if page.len() == 500 => after = Some(id.clone()),
            _ => return Ok(n),
        }
    }
    anyhow::bail!("more than 50,000 parked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_parked_notifications_block_none_behind_them_under_any_leader(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let smtp = FussySmtp::start(dir.path()).await?;
    let (pay_addr, _paysim) = start_paysim().await?;
    let mut env = worker_env(&pay_addr, Some(smtp.port), None, 60_000, 3_600_000);
    // Parked at the first failure: retried an hour later, or on demand.
    env.push(("TICKETD_SEND_ATTEMPTS_MAX".into(), "1".into()));
    let mut c = worker_cluster(env).await?;
    at_binary_version(&c).await?;
    let client = c.client();

    phase("300 purchases whose buyers' mail is refused: 600 notifications fail and park");
    let dts: Vec<String> = (0..FAILING_BUYERS.div_ceil(40) + 1)
        .map(|k| format!("dt-mail-{k}"))
        .collect();
    for dt in &dts {
        catalogue(&client, "seller-mail", dt, now_ms() + 30 * 86_400_000).await?;
    }
    let buyers: Vec<anyhow::Result<()>> = futures::stream::iter(0..FAILING_BUYERS)
        .map(|i| {
            let client = &client;
            let dt = &dts[i / 40];
            async move {
                let u = format!("fail-{i}");
                user(
                    client,
                    &u,
                    &format!("{u}@example.org"),
                    ReminderPreference::default(),
                )
                .await?;
                purchase(client, &u, dt, &u, (i % 40) as u32).await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    buyers.into_iter().collect::<anyhow::Result<()>>()?;
    let want_parked = 2 * FAILING_BUYERS;
    wait_for(
        "600 notifications parked",
        Duration::from_secs(120),
        || async { Ok((parked(&client).await? == want_parked).then_some(())) },
    )
    .await?;
    let (refused, _) = smtp.seen();
    assert_eq!(refused, want_parked, "each attempted once, then parked");

    phase("purchases behind them are mailed at once");
    let last = dts.last().expect("a dt");
    let mut want: BTreeSet<String> = BTreeSet::new();
    for i in 0..5 {
        let u = format!("ok-{i}");
        user(
            &client,
            &u,
            &format!("{u}@example.org"),
            ReminderPreference::default(),
        )
        .await?;
        purchase(&client, &u, last, &u, i).await?;
    }
    let QueryResult::Notifications(due) = read(
        &client,
        Query::DueNotifications {
            up_to_ms: i64::MAX,
            after: None,
            limit: 500,
        },
    )
    .await?
    else {
        anyhow::bail!("unexpected answer");
    };
    for n in due.iter().filter(|n| n.user_id.starts_with("ok-")) {
        if n.kind != ticketd_store::types::NotificationKind::Reminder {
            want.insert(format!("{}@ticketd.example", n.notification_id));
        }
    }
    assert_eq!(want.len(), 10, "{want:?}");
    wait_for("the 10 arrive", Duration::from_secs(30), || async {
        Ok(want.is_subset(&smtp.seen().1).then_some(()))
    })
    .await?;

    phase("a new leader keeps the parked ones parked, and mails what comes next");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(leader)?;
    c.wait_leader(Duration::from_secs(20)).await?;
    user(
        &client,
        "ok-late",
        "ok-late@example.org",
        ReminderPreference::default(),
    )
    .await?;
    purchase(&client, "ok-late", last, "ok-late", 9).await?;
    wait_for(
        "the late purchase's mail arrives",
        Duration::from_secs(30),
        || async {
            let (_, delivered) = smtp.seen();
            let late = delivered.iter().filter(|id| {
                due.iter()
                    .all(|n| !id.starts_with(&format!("{}@", n.notification_id)))
            });
            Ok((late.count() >= 2).then_some(()))
        },
    )
    .await?;
    let (refused, _) = smtp.seen();
    assert_eq!(
        refused, want_parked,
        "no parked notification was tried again"
    );
    assert_eq!(parked(&client).await?, want_parked);
    Ok(())
}
