//! Notifications from the store's outbox, delivered by the leader's dispatcher to a real SMTP
//! server (Debian's python3-aiosmtpd) and the SMS simulator, across a kill -9 of the leader:
//! order confirmations, e-tickets with their QR codes, reminders (a short lead, scheduled in log
//! time), a cancellation and its refund. Every stable message id due arrives at least once, the
//! receivers count exactly the distinct ids due, and the refund is made once.

mod common;
mod money;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use money::*;
use ticketd_http::auth::Role;
use ticketd_raft::client::Consistency;
use ticketd_store::types::ReminderPreference;
use ticketd_store::{Query, QueryResult};

/// Lead of the test users' reminders: 30 s before the start.
const LEAD_MS: i64 = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_etickets_and_reminders_arrive_once_per_id_across_a_leader_kill(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let smtp = SmtpSink::start(dir.path()).await?;
    let sms = SmsSim::start().await?;
    let (pay_addr, _paysim) = start_paysim().await?;
    let books = PaysimBooks::new(&pay_addr);
    let mut c = worker_cluster(worker_env(
        &pay_addr,
        Some(smtp.port),
        Some(&sms.addr),
        6_000,
        1_000,
    ))
    .await?;
    let client = c.client();
    let api =
        ApiProcess::start_with(&c, &c.endpoints(), dir.path(), &["--payments", &pay_addr]).await?;
    // The show starts in 40 s: the reminders (30 s before) fall due about 10 s from now.
    let starts_at = now_ms() + 40_000;
    let dt = "dt-notify";
    catalogue(&client, "seller-notify", dt, starts_at).await?;
    let by_email = ReminderPreference {
        lead_ms: LEAD_MS,
        email: true,
        sms: false,
    };
    let by_sms = ReminderPreference {
        lead_ms: LEAD_MS,
        email: false,
        sms: true,
    };
    user(&client, "mail-1", "mail-1@example.org", by_email.clone()).await?;
    user(&client, "mail-2", "mail-2@example.org", by_email).await?;
    user(&client, "sms-1", "sms-1@example.org", by_sms).await?;

    phase("four purchases: each writes a confirmation, e-tickets and a reminder to the outbox");
    let mut orders: BTreeMap<&str, (String, u64)> = BTreeMap::new();
    let mut answers = ticketd_checker::money::BuyerAnswers::default();
    for (name, u, seats) in [
        ("A", "mail-1", [0, 1]),
        ("B", "mail-1", [2, 3]),
        ("C", "mail-2", [4, 5]),
        ("D", "sms-1", [6, 7]),
    ] {
        let tok = token(u, Role::User);
        let (h, total) = hold(&api, &tok, dt, &format!("h-{name}"), &seats).await?;
        let (s, v) = buy(
            &api,
            &tok,
            dt,
            &format!("buy-{name}"),
            &h,
            total,
            "pm_card_visa",
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let order = order_of_hold(&client, &h).await?.expect("ordered");
        answers
            .acked
            .insert(h.clone(), order.order.order_id.clone());
        orders.insert(name, (order.order.order_id, order.order.created_index));
    }
    // Notification ids are `n-{log index}-{k}`, k counting over the entry's batch: the test
    // makes one purchase, cancel or refund at a time (nothing else mints notifications), so the
    // purchase's entry wrote confirmation (1), e-tickets (2) and reminder (3).
    let note = |idx: u64, k: u32| format!("n-{idx}-{k}");
    let idx = |name: &str| orders[name].1;

    phase("the leader is killed while the dispatcher works through them");
    let before_kill = smtp.received().len();
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(leader)?;
    eprintln!("leader {leader} killed after {before_kill} emails had arrived");

    phase("order B is canceled once its e-tickets arrived: a cancellation and a refund follow");
    let b_etickets = format!("{}@ticketd.example", note(idx("B"), 2));
    wait_for("B's e-tickets arrive", Duration::from_secs(20), || async {
        Ok(smtp
            .received()
            .iter()
            .any(|m| m.id == b_etickets)
            .then_some(()))
    })
    .await?;
    let r = api
        .http
        .post(api.url(&format!("/v1/orders/{}/cancel", orders["B"].0)))
        .bearer_auth(token("mail-1", Role::User))
        .header("idempotency-key", "cancel-B")
        .json(&serde_json::json!({ "reason": "cannot come" }))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let cancel_idx: u64 = r.headers()["x-log-index"].to_str()?.parse()?;
    let canceled: serde_json::Value = r.json().await?;
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    c.respawn(leader)?;

    // What is due, by channel: email by preference (and e-tickets always by email), SMS for sms-1.
    let mut want_email: BTreeSet<String> = BTreeSet::new();
    for name in ["A", "C"] {
        for k in 1..=3 {
            want_email.insert(note(idx(name), k));
        }
    }
    want_email.insert(note(idx("B"), 1));
    want_email.insert(note(idx("B"), 2));
    want_email.insert(note(cancel_idx, 1)); // cancellation
    want_email.insert(note(cancel_idx, 2)); // refund notice
    want_email.insert(note(idx("D"), 2)); // e-tickets carry QR codes: email
    let want_sms: BTreeSet<String> = [note(idx("D"), 1), note(idx("D"), 3)].into();

    phase("every id due arrives; the reminders come when due in log time");
    let outbox_empty = || async {
        let q = Query::DueNotifications {
            up_to_ms: i64::MAX,
            after: None,
            limit: 500,
        };
        anyhow::Ok(
            match client.read(&q, Consistency::Linearizable).await?.result {
                QueryResult::Notifications(n) => n.is_empty(),
                _ => false,
            },
        )
    };
    wait_for(
        "every notification sent",
        Duration::from_secs(40),
        || async {
            let got: BTreeSet<String> = smtp
                .received()
                .iter()
                .map(|m| m.id.trim_end_matches("@ticketd.example").to_string())
                .collect();
            let (_, sms_ids) = sms.inbox().await?;
            let sms_got: BTreeSet<String> = sms_ids.into_iter().collect();
            Ok((got.is_superset(&want_email)
                && sms_got.is_superset(&want_sms)
                && outbox_empty().await?)
                .then_some(()))
        },
    )
    .await?;
    let received = smtp.received();
    let distinct: BTreeSet<String> = received
        .iter()
        .map(|m| m.id.trim_end_matches("@ticketd.example").to_string())
        .collect();
    let (sms_deliveries, sms_ids) = sms.inbox().await?;
    eprintln!(
        "email: {} deliveries, {} distinct ids, {} due; SMS: {sms_deliveries} deliveries, {} distinct ids, {} due",
        received.len(),
        distinct.len(),
        want_email.len(),
        sms_ids.len(),
        want_sms.len()
    );
    assert_eq!(distinct, want_email, "distinct email ids == emails due");
    assert_eq!(
        sms_ids.into_iter().collect::<BTreeSet<_>>(),
        want_sms,
        "distinct SMS ids == SMS due"
    );
    assert!(
        !distinct.contains(&note(idx("B"), 3)),
        "the canceled order's reminder is void"
    );

    phase("what the messages say: e-tickets carry one QR per ticket; reminders name the show");
    let by_id = |id: &str| {
        received
            .iter()
            .find(|m| m.id == format!("{id}@ticketd.example"))
            .cloned()
            .expect("received")
    };
    let et = by_id(&note(idx("A"), 2));
    assert!(et.subject.starts_with("Your e-tickets"), "{}", et.subject);
    assert_eq!(et.raw.matches("image/svg+xml").count(), 2, "{}", et.raw);
    assert!(et.raw.contains(&format!("{}-1.svg", orders["A"].0)));
    let rem = by_id(&note(idx("A"), 3));
    assert!(
        rem.subject.starts_with("Reminder: Test Night"),
        "{}",
        rem.subject
    );
    assert!(by_id(&note(idx("A"), 1)).subject.contains("confirmed"));
    assert!(by_id(&note(cancel_idx, 2))
        .subject
        .starts_with("Refund of 210.00 EUR"));

    phase("the books balance; the canceled order's money went back once");
    let (captured, fees, sales) = wait_balanced(
        &client,
        &books,
        &["mail-1", "mail-2", "sms-1"],
        Duration::from_secs(20),
    )
    .await?;
    eprintln!("captured {captured}, fees {fees}, sales {sales} (minor units)");
    assert_eq!(captured, 3 * 21_000);

    phase("the money and messages checkers of the full-stack runs find nothing wrong");
    let b = read_books(
        &client,
        &books,
        &["mail-1", "mail-2", "sms-1"],
        &["seller-notify"],
    )
    .await?;
    let money = ticketd_checker::money::check_money(&b.intents, &b.refunds, &b.store, &answers);
    eprintln!("money: {}", serde_json::to_string(&money)?);
    assert!(money.anomalies.is_empty(), "{money:#?}");
    assert_eq!((money.purchases, money.refunds), (4, 1));
    let mut got: Vec<String> = received
        .iter()
        .map(|m| m.id.trim_end_matches("@ticketd.example").to_string())
        .collect();
    got.extend(sms.inbox().await?.1);
    let messages = ticketd_checker::messages::check_messages(&b.notes, &got, now_ms());
    eprintln!("messages: {}", serde_json::to_string(&messages)?);
    assert!(messages.anomalies.is_empty(), "{messages:#?}");
    Ok(())
}
