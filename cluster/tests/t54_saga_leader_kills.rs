//! The purchase saga with the Raft leader killed (kill -9) at each step: an API process with
//! fault injection pauses right after a step, the test kills the leader during the pause (when
//! the step's effect is visible), and the saga goes on against the new leader; a failed capture
//! and an API crash on top are healed by the new leader's periodic reconciler; a refund whose
//! answer is lost is repeated by the new leader's dispatcher with the same key and made once.
//! Every purchase ends in tickets + captured payment or in neither; the books balance.

mod common;
mod money;

use std::time::Duration;

use common::*;
use money::*;
use serde_json::json;
use ticketd_http::auth::Role;
use ticketd_raft::client::{ClusterClient, Consistency};
use ticketd_store::types::{NotificationKind, PaymentStatus, ReminderPreference};
use ticketd_store::{Query, QueryResult};
use ticketd_testkit::cluster::TestCluster;

/// Kills the agreed leader once `ready` holds; returns its id.
async fn kill_leader_when<F, Fut>(c: &mut TestCluster, what: &str, ready: F) -> anyhow::Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<()>>>,
{
    wait_for(what, Duration::from_secs(15), ready).await?;
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(leader)?;
    phase(&format!("killed leader {leader} ({what})"));
    Ok(leader)
}

/// Brings a killed node back (with its worker settings) and waits for an agreed leader.
async fn revive(c: &mut TestCluster, id: u64) -> anyhow::Result<()> {
    c.respawn(id)?;
    c.wait_leader(Duration::from_secs(20)).await?;
    Ok(())
}

async fn payment_status(
    client: &ClusterClient,
    books: &PaysimBooks,
    hold_id: &str,
) -> anyhow::Result<Option<PaymentStatus>> {
    let Some(i) = books.for_hold(hold_id).await?.into_iter().next() else {
        return Ok(None);
    };
    let q = Query::GetPayment { payment_ref: i.id };
    match client.read(&q, Consistency::Linearizable).await?.result {
        QueryResult::Payment(p) => Ok(p.map(|p| p.status)),
        other => anyhow::bail!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_at_each_saga_step_ends_in_tickets_and_capture_or_neither(
) -> anyhow::Result<()> {
    let (pay_addr, _paysim) = start_paysim().await?;
    let books = PaysimBooks::new(&pay_addr);
    // The periodic reconciler (every second) leaves intents younger than 6 s to the API.
    let mut c = worker_cluster(worker_env(&pay_addr, None, None, 6_000, 1_000)).await?;
    let client = c.client();
    let dt = "dt-kill";
    catalogue(&client, "seller-kill", dt, now_ms() + 30 * 24 * 3_600_000).await?;
    let dir = tempfile::tempdir()?;
    let pay_flags = [
        "--payments",
        pay_addr.as_str(),
        "--payments-timeout-ms",
        "2000",
    ];
    let api = ApiProcess::start_with(&c, &c.endpoints(), dir.path(), &pay_flags).await?;
    let users: Vec<String> = (1..=6).map(|i| format!("kill-user-{i}")).collect();
    for u in &users {
        user(
            &client,
            u,
            &format!("{u}@example.org"),
            ReminderPreference::default(),
        )
        .await?;
    }
    let tok = |i: usize| token(&users[i - 1], Role::User);
    let mut holds = Vec::new();

    for (u, fault, what) in [
        (1, "pause-after:authorize:2500", "after authorize"),
        (2, "pause-after:start:2500", "after the pin"),
        (
            3,
            "pause-after:confirm:2500",
            "after the order, before a capture that fails",
        ),
    ] {
        phase(&format!("leader killed {what}"));
        let fdir = tempfile::tempdir()?;
        let fapi = ApiProcess::start_with(
            &c,
            &c.endpoints(),
            fdir.path(),
            &[&pay_flags[..], &["--test-fault", fault]].concat(),
        )
        .await?;
        let seats = [u as u32 * 2, u as u32 * 2 + 1];
        let (h, total) = hold(&api, &tok(u), dt, &format!("h{u}"), &seats).await?;
        if u == 3 {
            books.fault("capture", "fail_before", 1).await?;
        }
        let key = format!("buy{u}");
        let t = tok(u);
        let (bought, killed) = tokio::join!(
            buy(&fapi, &t, dt, &key, &h, total, "pm_card_visa"),
            kill_leader_when(&mut c, what, || async {
                Ok(match u {
                    1 => (!books.for_hold(&h).await?.is_empty()).then_some(()),
                    2 => (payment_status(&client, &books, &h).await?
                        == Some(PaymentStatus::Pending))
                    .then_some(()),
                    _ => order_of_hold(&client, &h).await?.map(|_| ()),
                })
            })
        );
        let killed = killed?;
        let (s, v) = bought;
        eprintln!("purchase {what}: {s} {v}");
        assert!(
            s == 201 || s == 503,
            "an ack, or an unknown outcome to retry; never a wrong nack: {s} {v}"
        );
        if s == 503 {
            let (s, v) = buy(&api, &tok(u), dt, &key, &h, total, "pm_card_visa").await;
            assert_eq!(s, 201, "the retry with the same key acks: {v}");
        }
        holds.push((what, h));
        revive(&mut c, killed).await?;
    }

    phase("the API crashes after the order command and the leader dies: the new leader captures");
    let fdir = tempfile::tempdir()?;
    let fapi = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        fdir.path(),
        &[&pay_flags[..], &["--test-fault", "crash-after:confirm"]].concat(),
    )
    .await?;
    let (h, total) = hold(&api, &tok(4), dt, "h4", &[20, 21]).await?;
    let (s, _) = buy(&fapi, &tok(4), dt, "buy4", &h, total, "pm_card_visa").await;
    assert_eq!(s, 0, "the API exited");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(leader)?;
    holds.push(("API crash after the order, leader killed", h));

    phase("every purchase settles through the new leader's periodic reconciler");
    for (what, h) in &holds {
        let e = settled(&client, &books, h, Duration::from_secs(30)).await?;
        eprintln!("{what:>48}: {e:?}");
        assert_eq!(e, Ending::TicketsAndCaptured, "{what}");
    }
    revive(&mut c, leader).await?;

    phase("a partial refund whose answer is lost, then the leader dies: refunded once");
    let (h, total) = hold(&api, &tok(5), dt, "h5", &[30, 31]).await?;
    let (s, v) = buy(&api, &tok(5), dt, "buy5", &h, total, "pm_card_visa").await;
    assert_eq!(s, 201, "{v}");
    let ticket = v["tickets"][0]["ticket_id"]
        .as_str()
        .expect("ticket")
        .to_string();
    books.fault("refund", "fail_after", 1).await?;
    let (s, v) = post(
        &api,
        &format!("/v1/tickets/{ticket}/refund"),
        &tok(5),
        "refund5",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let refund_pending = || async {
        let q = Query::DueNotifications {
            up_to_ms: i64::MAX,
            after: None,
            limit: 500,
        };
        anyhow::Ok(
            match client.read(&q, Consistency::Linearizable).await?.result {
                QueryResult::Notifications(n) => n
                    .iter()
                    .any(|n| matches!(n.kind, NotificationKind::Refund { .. })),
                _ => false,
            },
        )
    };
    let killed = kill_leader_when(&mut c, "the refund was made, its answer lost", || async {
        let acted = books.for_hold(&h).await?[0].amount_refunded > 0;
        Ok((acted && refund_pending().await?).then_some(()))
    })
    .await?;
    wait_for(
        "the new leader's dispatcher marks the refund",
        Duration::from_secs(20),
        || async { Ok((!refund_pending().await?).then_some(())) },
    )
    .await?;
    let i = &books.for_hold(&h).await?[0];
    assert_eq!(
        (i.amount_captured, i.amount_refunded),
        (total, total / 2),
        "one ticket refunded exactly once"
    );
    revive(&mut c, killed).await?;

    phase("ticketctl reconcile: nothing left to heal");
    let report = ticketctl_reconcile(&c)?;
    eprintln!("{report}");
    assert_eq!(report["reconcile"]["anomalies"], json!([]));
    assert_eq!(report["reconcile"]["errors"], json!([]));

    phase("the books balance: captured = order totals - refunds; fees = rate x sales");
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let (captured, fees, sales) =
        wait_balanced(&client, &books, &user_refs, Duration::from_secs(20)).await?;
    eprintln!("captured {captured}, fees {fees}, sales {sales} (minor units)");
    assert_eq!(captured, 4 * total + total / 2);
    Ok(())
}
