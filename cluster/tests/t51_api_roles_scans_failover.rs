//! Over real HTTP against a real 3-node cluster: a seller's whole setup (venue, event, dt with
//! tiers, sale window, publish, sales report) and the rules around it; admission at the gate
//! (once, then refused with when and where); the leader killed between hold and purchase.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use ticketd_http::auth::Role;

/// POSTs `body` with a bearer token and an idempotency key.
async fn post(
    api: &ApiProcess,
    path: &str,
    tok: &str,
    key: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let r = api
        .http
        .post(api.url(path))
        .bearer_auth(tok)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, v))
}

async fn get(api: &ApiProcess, path: &str, tok: &str) -> anyhow::Result<(u16, Value)> {
    let r = api.http.get(api.url(path)).bearer_auth(tok).send().await?;
    let status = r.status().as_u16();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellers_scanners_and_a_leader_killed_between_hold_and_purchase() -> anyhow::Result<()> {
    let mut stack = seeded_stack(&[]).await?;
    let (c, api) = (&mut stack.c, &stack.api);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let seller = token("indie-demo", Role::Seller);
    let other_seller = token("live-nation-demo", Role::Seller);
    let user = token("demo-user-1", Role::User);
    let scanner = token("gate-scanner-1", Role::Scanner);

    phase("a seller sets up a venue, an event and a dt on sale");
    let venue = json!({
        "name": "Sentrum Scene", "city": "Oslo", "address": "Arbeidersamfunnets plass 1",
        "lat": 59.915, "lon": 10.751,
        "seating_map": {
            "sections": [{"section_id": "A", "name": "Parterre", "rows": [
                {"label": "1", "seats": (0..10).map(|i| json!({"number": (i + 1).to_string(), "x": i * 4, "y": 0})).collect::<Vec<_>>()}
            ]}],
            "ga_areas": [{"area_id": "floor", "name": "Floor", "capacity": 50}]
        }
    });
    let (s, v) = post(api, "/v1/venues", &seller, "venue-1", venue.clone()).await?;
    assert_eq!(s, 201, "{v}");
    let venue_id = v["venue_id"].as_str().unwrap().to_string();
    assert_eq!(v["seat_count"], 10);
    let (s, _) = post(api, "/v1/venues", &user, "venue-u", venue).await?;
    assert_eq!(s, 403, "a user cannot create venues");
    let ev =
        json!({"title": "Sentrum Sessions", "category": "concert", "performers": ["The Band"]});
    let (s, v) = post(api, "/v1/events", &seller, "event-1", ev).await?;
    assert_eq!(s, 201, "{v}");
    let event_id = v["event_id"].as_str().unwrap().to_string();
    let starts = now_ms + 20 * 24 * 3600 * 1000;
    let dt = json!({
        "venue_id": venue_id, "starts_at": rfc3339(starts), "time_zone": "Europe/Oslo",
        "tiers": [{"tier_id": "std", "name": "Standard", "price_minor": 45_000, "currency": "NOK",
                   "sections": ["A"], "seat_ranges": [], "ga_areas": ["floor"]}],
        "sale_starts_at": rfc3339(0), "sale_ends_at": rfc3339(starts), "publish": true
    });
    let (s, v) = post(
        api,
        &format!("/v1/events/{event_id}/dts"),
        &seller,
        "dt-1",
        dt.clone(),
    )
    .await?;
    assert_eq!(s, 201, "{v}");
    let dt_id = v["dt_id"].as_str().unwrap().to_string();
    assert_eq!(v["tiers"][0]["capacity"], 60, "{v}");
    assert_eq!(v["status"], "published", "{v}");
    assert_eq!(unix_ms(&v["starts_at"]), Some(starts), "{v}");
    let dt_path = format!("/v1/events/{event_id}/dts/{dt_id}");

    phase("another seller can neither add a dt to it nor move its sale window, nor read its sales");
    let (s, _) = post(
        api,
        &format!("/v1/events/{event_id}/dts"),
        &other_seller,
        "dt-x",
        dt,
    )
    .await?;
    assert_eq!(s, 404);
    let r = api
        .http
        .put(api.url(&format!("{dt_path}/sale-window")))
        .bearer_auth(&other_seller)
        .header("idempotency-key", "sw-x")
        .json(&json!({"sale_starts_at": rfc3339(0), "sale_ends_at": rfc3339(1)}))
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    assert_eq!(
        get(api, &format!("{dt_path}/sales"), &other_seller)
            .await?
            .0,
        404
    );

    phase("a user holds the best 3 seats; the leader is killed; the purchase still succeeds once");
    let (s, v) = post(
        api,
        &format!("{dt_path}/holds"),
        &user,
        "hold-1",
        json!({"tier_id": "std", "quantity": 3}),
    )
    .await?;
    assert_eq!(s, 201, "{v}");
    let hold_id = v["hold_id"].as_str().unwrap().to_string();
    let total = v["total_minor"].as_i64().unwrap();
    assert_eq!(v["seats"].as_array().map(Vec::len), Some(3), "{v}");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(leader)?;
    phase(&format!("killed leader {leader}"));
    let buy = json!({"hold_id": hold_id, "expected_total_minor": total, "payment_method_token": "pm_card_visa"});
    let (s, v) = post(api, &dt_path, &user, "buy-1", buy.clone()).await?;
    assert_eq!(s, 201, "purchase after the leader died: {v}");
    let order_id = v["order_id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "confirmed", "{v}");
    let (s, again) = post(api, &dt_path, &user, "buy-1", buy).await?;
    assert_eq!(s, 201, "{again}");
    assert_eq!(
        again["order_id"],
        order_id.as_str(),
        "the same key answers the same order"
    );
    let (_, mine) = get(api, "/v1/me/orders", &user).await?;
    assert_eq!(
        mine["orders"].as_array().map(Vec::len),
        Some(1),
        "applied once: {mine}"
    );
    let new_leader = c.wait_leader(Duration::from_secs(10)).await?;
    assert_ne!(new_leader, leader);

    phase("the sales report: totals; per tier on the VIP plan");
    let (s, rep) = get(api, &format!("{dt_path}/sales"), &seller).await?;
    assert_eq!(s, 200, "{rep}");
    assert_eq!(rep["sold"], 3);
    assert_eq!(rep["gross_minor"], 3 * 45_000);
    assert_eq!(
        rep["tiers"].as_array().map(Vec::len),
        Some(1),
        "indie-demo is on the VIP plan"
    );

    phase("at the gate: admitted once, then refused with when and where");
    let ticket_id = v["tickets"][0]["ticket_id"].as_str().unwrap().to_string();
    let (s, t) = get(api, &format!("/v1/tickets/{ticket_id}"), &user).await?;
    assert_eq!(s, 200);
    let payload = t["qr_payload"].as_str().unwrap().to_string();
    let scan = |key: &'static str, body: Value, tok: String| {
        let api = &api;
        async move { post(api, "/v1/scans", &tok, key, body).await }
    };
    let body = json!({"qr_payload": payload, "dt_id": dt_id, "gate": "north-3"});
    let (s, _) = scan("scan-u", body.clone(), user.clone()).await?;
    assert_eq!(s, 403, "a user cannot scan");
    let (s, a) = scan("scan-1", body.clone(), scanner.clone()).await?;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["verdict"], "admitted");
    assert_eq!(a["admitted"], true);
    let (_, a) = scan("scan-2", body, scanner.clone()).await?;
    assert_eq!(a["verdict"], "already_used");
    assert_eq!(a["used_at_gate"], "north-3");
    let forged =
        json!({"ticket_id": ticket_id, "code": "000000", "dt_id": dt_id, "gate": "north-3"});
    let (_, a) = scan("scan-3", forged, scanner.clone()).await?;
    assert!(
        matches!(
            a["verdict"].as_str(),
            Some("forged_code") | Some("stale_code")
        ),
        "{a}"
    );
    let (_, t) = get(api, &format!("/v1/tickets/{ticket_id}"), &user).await?;
    let scans = t["scans"].as_array().cloned().unwrap_or_default();
    assert_eq!(scans.len(), 2, "the scan history has both scans: {scans:?}");
    assert_eq!(scans[0]["verdict"], "admitted");

    phase(
        "an order with a used ticket cannot be canceled; a refunded ticket is refused at the gate",
    );
    let (s, p) = post(
        api,
        &format!("/v1/orders/{order_id}/cancel"),
        &user,
        "cancel-1",
        json!({}),
    )
    .await?;
    assert_eq!(
        (s, p["code"].as_str()),
        (409, Some("ORDER_NOT_CANCELABLE")),
        "{p}"
    );
    let other_ticket = again["tickets"][1]["ticket_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = post(
        api,
        &format!("/v1/tickets/{other_ticket}/refund"),
        &scanner,
        "refund-x",
        json!({}),
    )
    .await?;
    assert_eq!(s, 404, "only the owner refunds");
    let (s, p) = post(
        api,
        &format!("/v1/tickets/{other_ticket}/refund"),
        &user,
        "refund-1",
        json!({}),
    )
    .await?;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["amount_minor"].as_i64().map(|m| m > 0), Some(true), "{p}");
    assert_eq!(p["ticket_id"], other_ticket.as_str(), "{p}");
    assert_eq!(p["order_id"], order_id.as_str(), "{p}");
    let (_, t) = get(api, &format!("/v1/tickets/{other_ticket}"), &user).await?;
    let body = json!({"qr_payload": t["qr_payload"], "dt_id": dt_id, "gate": "north-3"});
    let (_, a) = scan("scan-4", body, scanner).await?;
    assert_eq!(a["verdict"], "refunded", "{a}");

    phase("a saved payment method: sealed before it reaches the store, used when a purchase names none");
    let r = api
        .http
        .put(api.url("/v1/me/payment-method"))
        .bearer_auth(&user)
        .header("idempotency-key", "pm-1")
        .json(&json!({"payment_method_token": "pm_card_visa"}))
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);
    let q = ticketd_store::Query::GetUser {
        user_id: "demo-user-1".into(),
    };
    let stored = c
        .client()
        .read(&q, ticketd_raft::client::Consistency::Linearizable)
        .await?;
    let ticketd_store::QueryResult::User(Some(u)) = stored.result else {
        panic!("no user")
    };
    let sealed = u.payment_token_sealed.expect("sealed token stored");
    assert!(
        !sealed
            .windows(b"pm_card_visa".len())
            .any(|w| w == b"pm_card_visa"),
        "the store holds ciphertext only"
    );
    let (_, me) = get(api, "/v1/me", &user).await?;
    assert!(me["payment_token_sealed"].is_null(), "never shown: {me}");
    assert_eq!(me["saved_payment_method"], true, "{me}");
    let (s, v) = post(
        api,
        &format!("{dt_path}/holds"),
        &user,
        "hold-2",
        json!({"tier_id": "std", "quantity": 1}),
    )
    .await?;
    assert_eq!(s, 201, "{v}");
    let buy = json!({"hold_id": v["hold_id"], "expected_total_minor": v["total_minor"]});
    let (s, v) = post(api, &dt_path, &user, "buy-2", buy).await?;
    assert_eq!(s, 201, "bought with the saved method: {v}");

    phase("plans: a seller moves to VIP (lower fee), not another seller's plan");
    let r = api
        .http
        .put(api.url("/v1/sellers/indie-demo/plan"))
        .bearer_auth(&other_seller)
        .header("idempotency-key", "plan-x")
        .json(&json!({"plan": "standard"}))
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let other_seller_id = "live-nation-demo";
    let r = api
        .http
        .put(api.url(&format!("/v1/sellers/{other_seller_id}/plan")))
        .bearer_auth(&other_seller)
        .header("idempotency-key", "plan-1")
        .json(&json!({"plan": "vip"}))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let plan: Value = r.json().await?;
    assert_eq!(
        (&plan["seller_id"], &plan["plan"], &plan["fee_bps"]),
        (&json!(other_seller_id), &json!("vip"), &json!(500)),
        "{plan}"
    );
    let (_, map) = get(api, "/v1/events/aurora-live/dts/aurora-live-d0", &user).await?;
    let gold = map["seat_map"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier_id"] == "gold")
        .cloned()
        .unwrap();
    assert_eq!(
        gold["fee_minor"], 600,
        "5% of 120.00 on VIP (was 10%): {gold}"
    );
    Ok(())
}
