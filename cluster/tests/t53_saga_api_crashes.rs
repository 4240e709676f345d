//! The purchase saga under crashes of the API process, over a real 3-node cluster, the payment
//! simulator and API processes: an API is started with fault injection that exits right after a
//! saga step (after authorize, after the pin, after the order command and before the capture);
//! then `ticketctl reconcile` runs the leader's reconciler. Every purchase ends with tickets and
//! a captured payment, or with no tickets and a voided (or refunded) payment. Declines and
//! provider timeouts are nacks and never tickets. The books balance at the end.

mod common;
mod money;

use std::time::Duration;

use common::*;
use money::*;
use serde_json::json;
use ticketd_http::auth::Role;
use ticketd_store::types::ReminderPreference;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_crashes_at_each_saga_step_end_in_tickets_and_capture_or_neither() -> anyhow::Result<()>
{
    let (pay_addr, _paysim) = start_paysim().await?;
    let books = PaysimBooks::new(&pay_addr);
    // Reconcile only on demand here (a long period), after a short grace.
    let c = worker_cluster(worker_env(&pay_addr, None, None, 1_000, 600_000)).await?;
    let client = c.client();
    let dt = "dt-crash";
    catalogue(&client, "seller-crash", dt, now_ms() + 30 * 24 * 3_600_000).await?;
    let dirs: Vec<tempfile::TempDir> = (0..5)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let pay_flags = [
        "--payments",
        pay_addr.as_str(),
        "--payments-timeout-ms",
        "1500",
    ];
    let api = ApiProcess::start_with(&c, &c.endpoints(), dirs[0].path(), &pay_flags).await?;
    let users: Vec<String> = (1..=10).map(|i| format!("crash-user-{i}")).collect();
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
    let mut cases: Vec<(&str, String, Ending)> = Vec::new();

    phase("crashes after authorize, after the pin, after the order command");
    let mut seat = 0u32;
    let mut next_seats = || {
        seat += 2;
        [seat - 2, seat - 1]
    };
    for (i, (step, dir)) in ["authorize", "start", "confirm"]
        .iter()
        .zip(&dirs[1..4])
        .enumerate()
    {
        let fault = format!("crash-after:{step}");
        let mut flags = pay_flags.to_vec();
        flags.extend(["--test-fault", fault.as_str()]);
        let crashing = ApiProcess::start_with(&c, &c.endpoints(), dir.path(), &flags).await?;
        let u = i + 1;
        let (h, total) = hold(&api, &tok(u), dt, &format!("h-{step}"), &next_seats()).await?;
        let (s, _) = buy(
            &crashing,
            &tok(u),
            dt,
            &format!("buy-{step}"),
            &h,
            total,
            "pm_card_visa",
        )
        .await;
        assert_eq!(s, 0, "the API exits after {step}: no answer");
        let expected = if *step == "authorize" {
            // The store never heard of the payment: it is fenced and voided, never completed.
            Ending::NoTicketsVoided
        } else {
            Ending::TicketsAndCaptured
        };
        cases.push((step, h, expected));
    }

    phase("a crash after authorize, then the buyer releases the hold");
    let crashing = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        dirs[4].path(),
        &[&pay_flags[..], &["--test-fault", "crash-after:authorize"]].concat(),
    )
    .await?;
    let (h, total) = hold(&api, &tok(4), dt, "h-released", &next_seats()).await?;
    let (s, _) = buy(
        &crashing,
        &tok(4),
        dt,
        "buy-released",
        &h,
        total,
        "pm_card_visa",
    )
    .await;
    assert_eq!(s, 0);
    let r = api
        .http
        .delete(api.url(&format!("/v1/events/{}/dts/{dt}/holds/{h}", event_of(dt))))
        .bearer_auth(tok(4))
        .header("idempotency-key", "release")
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);
    cases.push(("authorize, then released", h, Ending::NoTicketsVoided));

    phase("a crash after the order command, then the buyer cancels: refunded");
    let crashing = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        dirs[4].path(),
        &[&pay_flags[..], &["--test-fault", "crash-after:confirm"]].concat(),
    )
    .await?;
    let (h, total) = hold(&api, &tok(5), dt, "h-canceled", &next_seats()).await?;
    let (s, _) = buy(
        &crashing,
        &tok(5),
        dt,
        "buy-canceled",
        &h,
        total,
        "pm_card_visa",
    )
    .await;
    assert_eq!(s, 0);
    let order = order_of_hold(&client, &h).await?.expect("the order exists");
    let (s, v) = post(
        &api,
        &format!("/v1/orders/{}/cancel", order.order.order_id),
        &tok(5),
        "cancel",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "canceled", "{v}");
    cases.push(("confirm, then canceled", h, Ending::CanceledAndRefunded));

    phase("declines and provider timeouts are nacks, never tickets");
    for (u, pm, want_status, want_code) in [
        (6, "pm_card_declined", 402, "PAYMENT_DECLINED"),
        (7, "pm_card_timeout", 504, "PAYMENT_TIMEOUT"),
        (8, "pm_card_fail_after", 504, "PAYMENT_TIMEOUT"),
    ] {
        let (h, total) = hold(&api, &tok(u), dt, &format!("h-{pm}"), &next_seats()).await?;
        let (s, v) = buy(&api, &tok(u), dt, &format!("buy-{pm}"), &h, total, pm).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (want_status, Some(want_code)),
            "{pm}: {v}"
        );
        cases.push((pm, h, Ending::NoTicketsVoided));
    }

    phase("a capture that fails: acked, captured by the reconciler");
    books.fault("capture", "fail_before", 1).await?;
    let (h, total) = hold(&api, &tok(9), dt, "h-capture", &next_seats()).await?;
    let (s, v) = buy(&api, &tok(9), dt, "buy-capture", &h, total, "pm_card_visa").await;
    assert_eq!(s, 201, "{v}");
    let i = books.for_hold(&h).await?;
    assert_eq!(
        i[0].status,
        ticketd_money::provider::IntentStatus::RequiresCapture,
        "not captured yet"
    );
    cases.push(("capture failed", h, Ending::TicketsAndCaptured));

    phase("ticketctl reconcile heals every gap");
    let mut reports = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Past the grace period, everything above is the reconciler's.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = ticketctl_reconcile(&c)?;
        reports.push(report);
        let mut pending = Vec::new();
        for (what, h, _) in &cases {
            if let Ok(Err(why)) = ending(&client, &books, h).await {
                pending.push(format!("{what}: {why}"));
            }
        }
        if pending.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: {pending:?}\nreports: {reports:#?}"
        );
    }
    for (what, h, want) in &cases {
        let got = settled(&client, &books, h, Duration::from_secs(20)).await?;
        eprintln!("{what:>28}: {got:?}");
        assert_eq!(&got, want, "{what}");
    }
    let total = |k: &str| -> u64 {
        reports
            .iter()
            .map(|r| r["reconcile"][k].as_u64().unwrap_or(0))
            .sum()
    };
    eprintln!(
        "reconciler: completed {}, captured {}, fenced {}, voided {}, anomalies {:?}",
        total("completed"),
        total("captured"),
        total("fenced"),
        total("voided"),
        reports
            .iter()
            .flat_map(|r| r["reconcile"]["anomalies"]
                .as_array()
                .cloned()
                .unwrap_or_default())
            .collect::<Vec<_>>()
    );
    assert!(total("completed") >= 1 && total("captured") >= 2 && total("fenced") >= 3);

    phase("a retry of a crashed purchase acks the order the reconciler made");
    let (_, h_start, _) = &cases[1];
    let order = order_of_hold(&client, h_start).await?.expect("completed");
    let (s, v) = buy(
        &api,
        &tok(2),
        dt,
        "buy-start",
        h_start,
        order.order.total_minor,
        "pm_card_visa",
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["order_id"], order.order.order_id.as_str(), "{v}");

    phase("the books balance: captured = order totals - refunds; fees = rate x sales");
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let (captured, fees, sales) =
        wait_balanced(&client, &books, &user_refs, Duration::from_secs(20)).await?;
    eprintln!("captured {captured}, fees {fees}, sales {sales} (minor units)");
    assert!(captured > 0 && fees > 0);
    Ok(())
}
