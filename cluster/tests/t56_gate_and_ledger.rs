//! At the gate, over a real 3-node cluster: two scanners scan the same ticket at the same moment
//! through two API processes talking to two different nodes, and exactly one is admitted; a code
//! older than the clock tolerance, a forged code and a refunded ticket are refused with the
//! reason. Then the seller's payout ledger over HTTP: sales - fees - refunds, fees = rate x
//! sales, readable by that seller and an admin only, and in agreement with the provider's books.

mod common;
mod money;

use std::time::Duration;

use common::*;
use money::*;
use serde_json::{json, Value};
use ticketd_http::auth::Role;
use ticketd_notify::tickets;
use ticketd_raft::client::Consistency;
use ticketd_store::types::ReminderPreference;
use ticketd_store::{Query, QueryResult};

async fn scan(api: &ApiProcess, scanner: &str, key: &str, body: Value) -> anyhow::Result<Value> {
    let (s, v) = post(api, "/v1/scans", scanner, key, body).await;
    anyhow::ensure!(s == 200, "scan: {s} {v}");
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_admission_per_ticket_across_nodes_and_the_sellers_ledger() -> anyhow::Result<()> {
    let (pay_addr, _paysim) = start_paysim().await?;
    let books = PaysimBooks::new(&pay_addr);
    let c = worker_cluster(worker_env(&pay_addr, None, None, 6_000, 1_000)).await?;
    let client = c.client();
    let dt = "dt-gate";
    let seller = "seller-gate";
    catalogue(&client, seller, dt, now_ms() + 30 * 24 * 3_600_000).await?;
    let (d0, d1, d2) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let pay = ["--payments", pay_addr.as_str()];
    let api = ApiProcess::start_with(&c, &c.endpoints(), d0.path(), &pay).await?;
    // Each gate's API talks to one node only: reads and writes through different nodes.
    let gate_a = ApiProcess::start_with(&c, &[c.addr(1)], d1.path(), &pay).await?;
    let gate_b = ApiProcess::start_with(&c, &[c.addr(2)], d2.path(), &pay).await?;
    let users = ["gate-user-1", "gate-user-2", "gate-user-3"];
    for u in users {
        user(
            &client,
            u,
            &format!("{u}@example.org"),
            ReminderPreference::default(),
        )
        .await?;
    }

    phase("three orders: 3, 2 and 2 tickets; one ticket refunded");
    let mut tickets_of = Vec::new();
    for (i, (u, seats)) in users
        .iter()
        .zip([vec![0, 1, 2], vec![3, 4], vec![5, 6]])
        .enumerate()
    {
        let tok = token(u, Role::User);
        let (h, total) = hold(&api, &tok, dt, &format!("h{i}"), &seats).await?;
        let (s, v) = buy(&api, &tok, dt, &format!("b{i}"), &h, total, "pm_card_visa").await;
        assert_eq!(s, 201, "{v}");
        let ids: Vec<String> = v["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["ticket_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), seats.len(), "{v}");
        tickets_of.push(ids);
    }
    let refunded = tickets_of[2][0].clone();
    let (s, v) = post(
        &api,
        &format!("/v1/tickets/{refunded}/refund"),
        &token(users[2], Role::User),
        "refund-1",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ticket_id"], refunded.as_str(), "{v}");
    assert_eq!(v["currency"], "EUR", "{v}");
    assert!(v["amount_minor"].as_i64().is_some_and(|m| m > 0), "{v}");

    phase("two scanners, two API processes, two nodes, one ticket, the same instant");
    let (s1, s2) = (
        token("scanner-north", Role::Scanner),
        token("scanner-south", Role::Scanner),
    );
    let owner = token(users[0], Role::User);
    let mut admitted_total = 0;
    for t in &tickets_of[0] {
        let (st, shown) = get(&api, &format!("/v1/tickets/{t}"), &owner).await?;
        assert_eq!(st, 200);
        let payload = shown["qr_payload"].as_str().expect("payload").to_string();
        let body = |gate: &str| json!({ "qr_payload": payload, "dt_id": dt, "gate": gate });
        let (ka, kb) = (format!("{t}-north"), format!("{t}-south"));
        let (a, b) = tokio::join!(
            scan(&gate_a, &s1, &ka, body("north")),
            scan(&gate_b, &s2, &kb, body("south"))
        );
        let (a, b) = (a?, b?);
        let mut verdicts = [
            a["verdict"].as_str().unwrap_or_default().to_string(),
            b["verdict"].as_str().unwrap_or_default().to_string(),
        ];
        verdicts.sort();
        assert_eq!(verdicts, ["admitted", "already_used"], "{a} {b}");
        admitted_total += usize::from(a["admitted"] == true) + usize::from(b["admitted"] == true);
        let loser = if a["admitted"] == true { &b } else { &a };
        assert!(
            loser["used_at_gate"].is_string(),
            "the refusal says where: {loser}"
        );
    }
    assert_eq!(
        admitted_total,
        tickets_of[0].len(),
        "exactly one admission per ticket"
    );

    phase("a code older than the tolerance, a forged code, a refunded ticket: refused");
    let t = &tickets_of[1][0];
    let QueryResult::Ticket(Some(stored)) = client
        .read(
            &Query::GetTicket {
                ticket_id: t.clone(),
            },
            Consistency::Linearizable,
        )
        .await?
        .result
    else {
        anyhow::bail!("no ticket {t}");
    };
    let now_s = (now_ms() / 1000) as u64;
    let step = tickets::step_of(now_s);
    let old = tickets::code_at(&stored.secret, step - tickets::CODE_TOLERANCE_STEPS - 2);
    let v = scan(
        &gate_a,
        &s1,
        "stale",
        json!({ "qr_payload": tickets::qr_payload(t, &old), "dt_id": dt, "gate": "north" }),
    )
    .await?;
    assert_eq!(
        (v["verdict"].as_str(), &v["admitted"]),
        (Some("stale_code"), &json!(false))
    );
    let current = tickets::code_at(&stored.secret, step);
    let forged = format!("{:06}", (current.parse::<u32>()? + 1) % 1_000_000);
    let v = scan(
        &gate_b,
        &s2,
        "forged",
        json!({ "ticket_id": t, "code": forged, "dt_id": dt, "gate": "south" }),
    )
    .await?;
    assert_eq!(v["verdict"], "forged_code");
    let QueryResult::Ticket(Some(r)) = client
        .read(
            &Query::GetTicket {
                ticket_id: refunded.clone(),
            },
            Consistency::Linearizable,
        )
        .await?
        .result
    else {
        anyhow::bail!("no ticket {refunded}");
    };
    let code = tickets::code_at(&r.secret, tickets::step_of((now_ms() / 1000) as u64));
    let v = scan(
        &gate_a,
        &s1,
        "refunded",
        json!({ "qr_payload": tickets::qr_payload(&refunded, &code), "dt_id": dt, "gate": "north" }),
    )
    .await?;
    assert_eq!(v["verdict"], "refunded");

    phase("the seller's ledger: sales - fees - refunds; fees = rate x sales");
    // The refund is made by the dispatcher; the books balance once it is.
    let (captured, fees_at_sale, sales) =
        wait_balanced(&client, &books, &users, Duration::from_secs(20)).await?;
    let path = format!("/v1/sellers/{seller}/ledger?limit=2");
    let (s, l) = get(&api, &path, &token(seller, Role::Seller)).await?;
    assert_eq!(s, 200, "{l}");
    eprintln!("ledger: {l}");
    let t = &l["totals"][0];
    let fee = PRICE * i64::from(FEE_BPS) / 10_000;
    let n = |k: &str| t[k].as_i64().unwrap_or(-1);
    assert_eq!(
        (n("orders"), n("tickets"), n("tickets_returned")),
        (3, 7, 1)
    );
    assert_eq!(n("face_value_minor"), 7 * PRICE);
    assert_eq!(n("sales_minor"), 7 * (PRICE + fee));
    assert_eq!(
        n("fees_charged_minor") * 10_000,
        n("face_value_minor") * i64::from(FEE_BPS),
        "fees = rate x sales"
    );
    assert_eq!(
        n("fees_minor"),
        6 * fee,
        "the refunded ticket's fee went back"
    );
    assert_eq!(n("refunds_minor"), PRICE + fee);
    assert_eq!(
        n("payout_minor"),
        n("sales_minor") - n("fees_minor") - n("refunds_minor")
    );
    assert_eq!(n("payout_minor"), 6 * PRICE);
    assert_eq!(
        n("sales_minor") - n("refunds_minor"),
        captured,
        "the ledger agrees with the money the provider holds"
    );
    assert_eq!(
        (n("fees_charged_minor"), n("face_value_minor")),
        (fees_at_sale, sales)
    );
    assert_eq!(l["entries"].as_array().map(Vec::len), Some(2), "newest two");
    for e in l["entries"].as_array().into_iter().flatten() {
        assert!(
            unix_ms(&e["created_at"]).is_some_and(|t| t > 0),
            "an entry's sale time is an RFC 3339 time: {e}"
        );
    }
    assert_eq!(l["fee_bps"], FEE_BPS);

    phase("only that seller and an admin read it");
    let (s, _) = get(&api, &path, &token("admin-1", Role::Admin)).await?;
    assert_eq!(s, 200);
    let (s, _) = get(&api, &path, &token("another-seller", Role::Seller)).await?;
    assert_eq!(s, 404, "another seller's ledger does not exist for you");
    let (s, _) = get(&api, &path, &token(users[0], Role::User)).await?;
    assert_eq!(s, 403);
    let (s, _) = get(
        &api,
        "/v1/sellers/nobody/ledger",
        &token("admin-1", Role::Admin),
    )
    .await?;
    assert_eq!(s, 404);
    eprintln!("captured {captured}, fees at sale {fees_at_sale}, sales {sales} (minor units)");
    Ok(())
}
