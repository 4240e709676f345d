//! The provider's answer is checked against the hold before the store hears of the payment: a
//! provider that authorizes another amount than asked gets its intent voided, the buyer a nack,
//! and no order or ticket comes of it; the hold stays the buyer's. The money checker finds
//! nothing wrong with that run, and flags the same run against a saga built to skip the void.

mod common;
mod money;

use common::*;
use serde_json::{json, Value};
use ticketd_checker::money::{check_money, BuyerAnswers};
use ticketd_http::auth::Role;

/// The money checker over the stack's books, the buyer's purchase of `hold_id` refused.
async fn money_check(
    s: &Stack,
    hold_id: &str,
) -> anyhow::Result<ticketd_checker::money::MoneyReport> {
    let books = money::PaysimBooks::new(&s.pay_addr);
    let b = money::read_books(&s.c.client(), &books, &["demo-user-1"], &[]).await?;
    let answers = BuyerAnswers {
        nacked: [hold_id.to_string()].into(),
        ..BuyerAnswers::default()
    };
    let report = check_money(&b.intents, &b.refunds, &b.store, &answers);
    eprintln!("money: {}", serde_json::to_string(&report)?);
    Ok(report)
}

/// A hold bought with a card the provider authorizes one cent more for: answered 402; the
/// hold's id.
async fn refused_purchase(s: &Stack) -> anyhow::Result<String> {
    let (api, http) = (&s.api, &s.api.http);
    let buyer = token("demo-user-1", Role::User);
    let dt_path = "/v1/events/comedy-club/dts/comedy-club-d1";
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&buyer)
        .header("idempotency-key", "t82-hold")
        .json(&json!({"seats": [0]}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let hold: Value = r.json().await?;
    let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_string();
    let buy = json!({"hold_id": hold_id, "expected_total_minor": hold["total_minor"],
        "payment_method_token": "pm_card_wrong_amount"});
    let r = http
        .post(api.url(dt_path))
        .bearer_auth(&buyer)
        .header("idempotency-key", "t82-buy")
        .json(&buy)
        .send()
        .await?;
    assert_eq!(r.status(), 402);
    Ok(hold_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_built_to_skip_the_void_is_flagged_by_the_money_checker() -> anyhow::Result<()> {
    let s = seeded_stack(&["--test-fault", "skip-void"]).await?;
    let hold_id = refused_purchase(&s).await?;
    let report = money_check(&s, &hold_id).await?;
    assert!(
        report
            .anomalies
            .iter()
            .any(|a| a.contains(&hold_id) && a.contains("left authorized")),
        "{report:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_for_another_amount_is_voided_and_issues_nothing() -> anyhow::Result<()> {
    let s = seeded_stack(&[]).await?;
    let (api, http) = (&s.api, &s.api.http);
    let buyer = token("demo-user-1", Role::User);
    let dt_path = "/v1/events/comedy-club/dts/comedy-club-d1";

    phase("a hold, bought with a card the provider authorizes one cent more for");
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&buyer)
        .header("idempotency-key", "t82-hold")
        .json(&json!({"seats": [0]}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let hold: Value = r.json().await?;
    let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_string();
    let buy = json!({"hold_id": hold_id, "expected_total_minor": hold["total_minor"],
        "payment_method_token": "pm_card_wrong_amount"});
    let r = http
        .post(api.url(dt_path))
        .bearer_auth(&buyer)
        .header("idempotency-key", "t82-buy")
        .json(&buy)
        .send()
        .await?;
    assert_eq!(r.status(), 402);
    let p: Value = r.json().await?;
    assert_eq!(p["code"], "PAYMENT_FAILED", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("did not match the hold"),
        "{p}"
    );

    phase("the provider's books: the intent is voided; the store: no order, the hold live");
    let intents: Vec<Value> = http
        .get(format!(
            "http://{}/v1/payment_intents/search?key=hold_id&value={hold_id}",
            s.pay_addr
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0]["status"], "canceled", "{intents:?}");
    assert_eq!(intents[0]["amount_captured"], 0, "{intents:?}");
    let orders: Value = http
        .get(api.url("/v1/me/orders"))
        .bearer_auth(&buyer)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(orders["orders"], json!([]), "{orders}");
    let h: Value = http
        .get(api.url(&format!("{dt_path}/holds/{hold_id}")))
        .bearer_auth(&buyer)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(h["status"], "live", "{h}");
    assert_eq!(h["order_id"], Value::Null, "{h}");

    phase("the same request again: the same nack, still nothing issued");
    let r = http
        .post(api.url(dt_path))
        .bearer_auth(&buyer)
        .header("idempotency-key", "t82-buy")
        .json(&buy)
        .send()
        .await?;
    assert_eq!(r.status(), 402);
    let orders: Value = http
        .get(api.url("/v1/me/orders"))
        .bearer_auth(&buyer)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(orders["orders"], json!([]), "{orders}");
    let report = money_check(&s, &hold_id).await?;
    assert!(report.anomalies.is_empty(), "{report:#?}");
    assert_eq!((report.holds, report.voids, report.nacked), (1, 1, 1));
    Ok(())
}
