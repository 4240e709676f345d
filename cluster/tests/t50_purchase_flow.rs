//! The seed's end-user flow over real HTTP against a real 3-node cluster, with the payment
//! provider simulator: browse near a point, pick an event, its dts, the seat map, hold, buy,
//! see the order and tickets, cancel. Races, expiry and authorization around it.

mod common;

use common::*;
use serde_json::{json, Value};
use ticketd_http::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_hold_buy_see_tickets_cancel_and_the_rules_around_it() -> anyhow::Result<()> {
    let stack = seeded_stack(&[]).await?;
    let api = &stack.api;
    let http = &api.http;

    phase("sign up and log in; a taken email, a short password and a wrong password are refused");
    let post = |path: &'static str, key: &'static str, body: Value| {
        http.post(api.url(path))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let ada_signup = json!({"email": "Ada@Example.org", "password": "correct horse battery", "name": "Ada Lovelace"});
    let r = post("/v1/users", "signup-ada", ada_signup.clone()).await?;
    assert_eq!(r.status(), 201, "{}", r.text().await?);
    let r = post("/v1/users", "signup-ada", ada_signup).await?;
    assert_eq!(
        r.status(),
        201,
        "a retry with the same key answers the same outcome"
    );
    let r = post(
        "/v1/users",
        "signup-ada-2",
        json!({"email": "ada@example.org", "password": "another password", "name": "Ada"}),
    )
    .await?;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await?["code"], "EMAIL_TAKEN");
    let r = post(
        "/v1/users",
        "signup-short",
        json!({"email": "eve@example.org", "password": "short", "name": "Eve"}),
    )
    .await?;
    assert_eq!(r.status(), 400);
    let r = post("/v1/users", "signup-admin", json!({"email": "eve@example.org", "password": "long enough", "name": "Eve", "role": "admin"})).await?;
    assert_eq!(r.status(), 401, "only an admin makes admins");
    let r = post(
        "/v1/sessions",
        "login-bad",
        json!({"email": "ada@example.org", "password": "wrong password"}),
    )
    .await?;
    assert_eq!(r.status(), 401);
    let r = post(
        "/v1/sessions",
        "login-nobody",
        json!({"email": "nobody@example.org", "password": "wrong password"}),
    )
    .await?;
    assert_eq!(r.status(), 401);
    let s: Value = post(
        "/v1/sessions",
        "login-ada",
        json!({"email": "ADA@example.org", "password": "correct horse battery"}),
    )
    .await?
    .json()
    .await?;
    let ada = s["token"].as_str().expect("token").to_string();
    assert_eq!(s["role"], "user");
    let ada_id = s["user_id"].clone();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    assert!(
        unix_ms(&s["expires_at"]).is_some_and(|t| t > now_ms),
        "the session expires at an RFC 3339 time to come: {s}"
    );
    let s: Value = post(
        "/v1/sessions",
        "login-bob",
        json!({"email": "demo2@example.org", "password": ticketd_cluster::demo::DEMO_PASSWORD}),
    )
    .await?
    .json()
    .await?;
    let bob = s["token"].as_str().expect("token").to_string();
    let me: Value = http
        .get(api.url("/v1/me"))
        .bearer_auth(&ada)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(me["contact"]["email"], "Ada@Example.org");
    assert_eq!(me["user_id"], ada_id, "{me}");
    assert_eq!(me["role"], "user", "{me}");
    assert!(me.get("password_hash").is_none());

    phase("search: words of the title, prefix of the last one");
    let found: Value = http
        .get(api.url("/v1/events?q=auro"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(found["events"][0]["title"], "Aurora Live", "{found}");
    let page: Value = http
        .get(api.url("/v1/events?limit=2"))
        .send()
        .await?
        .json()
        .await?;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let page2: Value = http
        .get(api.url(&format!("/v1/events?limit=2&cursor={cursor}")))
        .send()
        .await?
        .json()
        .await?;
    assert_ne!(
        page["events"][0]["event_id"],
        page2["events"][0]["event_id"]
    );

    phase("browse near Oslo: the Oslo event comes first, with its distance");
    let r = http
        .get(api.url("/v1/events?lat=59.91&lon=10.75&radius_km=50"))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-applied-index") && r.headers().contains_key("etag"));
    let etag = r.headers()["etag"].clone();
    let events: Value = r.json().await?;
    let hits = events["events"].as_array().expect("events");
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|h| h["venue_id"] == "oslo-spektrum"),
        "only Oslo within 50 km: {hits:?}"
    );
    let r = http
        .get(api.url("/v1/events?lat=59.91&lon=10.75&radius_km=50"))
        .header("if-none-match", etag)
        .send()
        .await?;
    assert_eq!(r.status(), 304, "a revalidation with the ETag is a 304");

    phase("the event, its dts, a seat map with tiers and availability");
    let e: Value = http
        .get(api.url("/v1/events/aurora-live"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(e["title"], "Aurora Live");
    let dts: Value = http
        .get(api.url("/v1/events/aurora-live/dts"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(dts["dts"].as_array().map(|a| a.len()), Some(2));
    let dt_path = "/v1/events/aurora-live/dts/aurora-live-d0";
    let map: Value = http.get(api.url(dt_path)).send().await?.json().await?;
    assert_eq!(map["seat_map"]["seat_count"], 400);
    let gold = map["seat_map"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier_id"] == "gold")
        .cloned()
        .unwrap();
    assert_eq!(gold["available"], 200);

    phase("two users race for the same seats: exactly one wins, the other gets the conflict code");
    let hold_req = |tok: &str, key: &str| {
        http.post(api.url(&format!("{dt_path}/holds")))
            .bearer_auth(tok)
            .header("idempotency-key", key)
            .json(&json!({ "seats": [0, 1] }))
            .send()
    };
    let (ra, rb) = tokio::join!(hold_req(&ada, "race-a"), hold_req(&bob, "race-b"));
    let (ra, rb) = (ra?, rb?);
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "one hold, one conflict");
    let (winner, loser) = if ra.status() == 201 {
        (ra, rb)
    } else {
        (rb, ra)
    };
    let conflict: Value = loser.json().await?;
    assert_eq!(conflict["code"], "SEAT_ALREADY_HELD");
    let hold_location = winner
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let held: Value = winner.json().await?;
    let hold_id = held["hold_id"].as_str().expect("hold id").to_string();
    let total = held["total_minor"].as_i64().expect("total");
    assert_eq!(held["status"], "live", "{held}");
    assert_eq!(held["seats"].as_array().map(Vec::len), Some(2), "{held}");
    assert_eq!(
        hold_location.as_deref(),
        Some(format!("{dt_path}/holds/{hold_id}").as_str()),
        "a hold is created at its URL"
    );
    let owner = {
        let r = http
            .get(api.url(&format!("{dt_path}/holds/{hold_id}")))
            .bearer_auth(&ada)
            .send()
            .await?;
        if r.status() == 200 {
            ada.clone()
        } else {
            bob.clone()
        }
    };
    let other = if owner == ada {
        bob.clone()
    } else {
        ada.clone()
    };

    phase("another user cannot see or release the hold: 404");
    let r = http
        .get(api.url(&format!("{dt_path}/holds/{hold_id}")))
        .bearer_auth(&other)
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let r = http
        .delete(api.url(&format!("{dt_path}/holds/{hold_id}")))
        .bearer_auth(&other)
        .header("idempotency-key", "steal")
        .send()
        .await?;
    assert_eq!(r.status(), 404);

    phase("a wrong total is a nack; a declined card is a nack; then the purchase acks");
    let buy = |tok: &str, key: &str, total: i64, pm: &str| {
        http.post(api.url(dt_path))
            .bearer_auth(tok)
            .header("idempotency-key", key)
            .json(&json!({ "hold_id": hold_id, "expected_total_minor": total, "payment_method_token": pm }))
            .send()
    };
    let r = buy(&owner, "buy-wrong", total - 1, "pm_card_visa").await?;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await?["code"], "AMOUNT_MISMATCH");
    let r = buy(&owner, "buy-declined", total, "pm_card_declined").await?;
    assert_eq!(r.status(), 402);
    let r = buy(&owner, "buy-1", total, "pm_card_visa").await?;
    assert_eq!(r.status(), 201, "{}", r.text().await?);
    let r = buy(&owner, "buy-1", total, "pm_card_visa").await?;
    assert_eq!(r.status(), 201, "the retry answers the same ack");
    let order_location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let ack: Value = r.json().await?;
    let order_id = ack["order_id"].as_str().expect("order id").to_string();
    assert_eq!(
        order_location.as_deref(),
        Some(format!("/v1/orders/{order_id}").as_str()),
        "an order is created at its URL"
    );
    assert_eq!(ack["status"], "confirmed", "{ack}");
    assert_eq!(ack["hold_id"], hold_id.as_str(), "{ack}");
    assert_eq!(ack["total_minor"], total, "{ack}");
    let ticket_ids: Vec<String> = ack["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ticket_ids.len(),
        2,
        "the retry with the same key answers the same order"
    );

    phase("the buyer sees the order and a ticket with its rotating code and QR; nobody else does");
    let o: Value = http
        .get(api.url(&format!("/v1/orders/{order_id}")))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(o["total_minor"], total);
    let r = http
        .get(api.url(&format!("/v1/orders/{order_id}")))
        .bearer_auth(&other)
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let t: Value = http
        .get(api.url(&format!("/v1/tickets/{}", ticket_ids[0])))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(t["code"].as_str().map(str::len), Some(6));
    assert!(t["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        t.get("secret").is_none(),
        "the secret never leaves the server"
    );
    let r = http
        .get(api.url(&format!("/v1/tickets/{}", ticket_ids[0])))
        .bearer_auth(&other)
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let mine: Value = http
        .get(api.url("/v1/me/orders"))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(mine["orders"].as_array().map(|a| a.len()), Some(1));
    assert!(mine["orders"][0]["tickets"][0].get("secret").is_none());
    let tickets: Value = http
        .get(api.url("/v1/me/tickets"))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(tickets["tickets"].as_array().map(|a| a.len()), Some(2));
    assert!(
        tickets["tickets"][0].get("secret").is_none(),
        "the secret never leaves the server"
    );
    let none: Value = http
        .get(api.url("/v1/me/tickets"))
        .bearer_auth(&other)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        none["tickets"].as_array().map(|a| a.len()),
        Some(0),
        "another user sees none of them"
    );

    phase("cancel: another user cannot; the buyer can, and the seats go back");
    let cancel = |tok: &str, key: &str| {
        http.post(api.url(&format!("/v1/orders/{order_id}/cancel")))
            .bearer_auth(tok)
            .header("idempotency-key", key)
            .json(&json!({}))
            .send()
    };
    assert_eq!(cancel(&other, "c-other").await?.status(), 404);
    let r = cancel(&owner, "c-1").await?;
    assert_eq!(r.status(), 200);
    let canceled: Value = r.json().await?;
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    let o: Value = http
        .get(api.url(&format!("/v1/orders/{order_id}")))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(o["status"], "canceled");
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&other)
        .header("idempotency-key", "after-cancel")
        .json(&json!({ "seats": [0, 1] }))
        .send()
        .await?;
    assert_eq!(
        r.status(),
        201,
        "the canceled seats are on sale again: {}",
        r.text().await?
    );

    phase("unsafe requests need an Idempotency-Key and a token; a client cannot set prices");
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&ada)
        .json(&json!({ "seats": [5] }))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.json::<Value>().await?["code"], "IDEMPOTENCY_KEY_MISSING");
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .header("idempotency-key", "x")
        .json(&json!({ "seats": [5] }))
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&ada)
        .header("idempotency-key", "price")
        .json(&json!({ "seats": [5], "price_minor": 1 }))
        .send()
        .await?;
    assert!(
        r.status().is_client_error(),
        "unknown fields such as a price are refused"
    );
    let scanner = token("scanner-1", Role::Scanner);
    let r = http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&scanner)
        .header("idempotency-key", "s")
        .json(&json!({ "seats": [5] }))
        .send()
        .await?;
    assert_eq!(r.status(), 403, "a scanner does not buy");
    Ok(())
}
