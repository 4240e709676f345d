//! Protection over real HTTP against a real 3-node cluster: per-user and per-IP rate limits on
//! holds (429 with Retry-After), a cap on seats per hold and per user per dt, and nothing held
//! when a request is refused.

mod common;

use common::*;
use serde_json::{json, Value};
use ticketd_http::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_rate_limits_and_seat_caps() -> anyhow::Result<()> {
    let stack = seeded_stack(&[
        "--holds-per-user-per-minute",
        "3",
        "--holds-per-ip-per-minute",
        "5",
    ])
    .await?;
    let api = &stack.api;
    let dt_path = "/v1/events/comedy-club/dts/comedy-club-d1";
    let hold = |tok: String, key: String, body: Value| {
        let api = &api;
        async move {
            let r = api
                .http
                .post(api.url(&format!("{dt_path}/holds")))
                .bearer_auth(tok)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await?;
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, retry, v))
        }
    };
    let a = token("demo-user-1", Role::User);
    let b = token("demo-user-2", Role::User);

    phase("seats per hold: more than the store's cap is refused, nothing is held");
    let seats: Vec<u32> = (0..11).collect();
    let (s, _, p) = hold(a.clone(), "big".into(), json!({ "seats": seats })).await?;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["code"], "HOLD_LIMIT_EXCEEDED", "{p}");

    phase("two holds within the per-user rate limit (3/min, the refused one counted)");
    let (s, _, p) = hold(
        a.clone(),
        "h1".into(),
        json!({ "seats": [0, 1, 2, 3, 4, 5] }),
    )
    .await?;
    assert_eq!(s, 201, "{p}");
    let (s, _, p) = hold(a.clone(), "h2".into(), json!({ "seats": [10, 11, 12, 13] })).await?;
    assert_eq!(s, 201, "{p}");

    phase("per-user rate limit: the 4th hold request within a minute is 429 with Retry-After");
    let (s, retry, p) = hold(a.clone(), "h3".into(), json!({ "seats": [20] })).await?;
    assert_eq!((s, retry), (429, true), "{p}");
    assert_eq!(p["code"], "RATE_LIMITED");

    phase("another user from the same IP still holds, until the per-IP limit (5/min)");
    let (s, _, p) = hold(b.clone(), "b1".into(), json!({ "seats": [0] })).await?;
    assert_eq!(
        (s, p["code"].as_str()),
        (409, Some("SEAT_ALREADY_HELD")),
        "{p}"
    );
    let (s, _, p) = hold(b.clone(), "b2".into(), json!({ "seats": [30] })).await?;
    assert_eq!(s, 201, "the 5th request from this IP: {p}");
    let (s, retry, p) = hold(b.clone(), "b3".into(), json!({ "seats": [31] })).await?;
    assert_eq!(
        (s, retry),
        (429, true),
        "a 6th request from this IP in the minute: {p}"
    );

    phase("what was refused holds nothing: the map shows exactly the 11 seats of the 3 holds");
    let map: Value = api.http.get(api.url(dt_path)).send().await?.json().await?;
    let held: u64 = map["seat_map"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["held"].as_u64().unwrap())
        .sum();
    assert_eq!(held, 11, "{}", map["seat_map"]["tiers"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_per_user_per_dt_are_capped() -> anyhow::Result<()> {
    let stack = seeded_stack(&[]).await?;
    let api = &stack.api;
    let dt_path = "/v1/events/comedy-club/dts/comedy-club-d0";
    let a = token("demo-user-1", Role::User);
    let mut statuses = Vec::new();
    for (i, seats) in [vec![0, 1, 2, 3, 4, 5], vec![10, 11, 12, 13], vec![20]]
        .into_iter()
        .enumerate()
    {
        let r = api
            .http
            .post(api.url(&format!("{dt_path}/holds")))
            .bearer_auth(&a)
            .header("idempotency-key", format!("cap-{i}"))
            .json(&json!({ "seats": seats }))
            .send()
            .await?;
        let s = r.status().as_u16();
        let v: Value = r.json().await?;
        statuses.push((s, v["code"].as_str().map(str::to_string)));
    }
    assert_eq!(statuses[0].0, 201);
    assert_eq!(statuses[1].0, 201);
    assert_eq!(
        statuses[2],
        (422, Some("USER_LIMIT_EXCEEDED".to_string())),
        "10 seats per user per dt"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_a_write_answers_503_with_retry_after_and_the_retry_applies_once(
) -> anyhow::Result<()> {
    let mut stack = seeded_stack(&[]).await?;
    let (c, api) = (&mut stack.c, &stack.api);
    let dt_path = "/v1/events/nordic-jazz/dts/nordic-jazz-d1";
    let a = token("demo-user-1", Role::User);
    let hold = || {
        api.http
            .post(api.url(&format!("{dt_path}/holds")))
            .bearer_auth(&a)
            .header("idempotency-key", "no-majority")
            .json(&json!({ "seats": [7] }))
            .send()
    };

    phase("two of three nodes down: the hold cannot commit; 503 with Retry-After, no hang");
    let leader = c.wait_leader(std::time::Duration::from_secs(10)).await?;
    let others: Vec<u64> = c.running().into_iter().filter(|id| *id != leader).collect();
    let down = [leader, others[0]];
    for id in down {
        c.kill(id)?;
    }
    let started = std::time::Instant::now();
    let r = hold().await?;
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").is_some();
    let p: Value = r.json().await?;
    assert_eq!((status, retry), (503, true), "{p}");
    assert!(
        matches!(
            p["code"].as_str(),
            Some("OUTCOME_UNKNOWN") | Some("UNAVAILABLE")
        ),
        "{p}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "bounded by the client's deadline"
    );

    phase("the nodes come back; the retry with the same key gets one hold");
    for id in down {
        c.restart(id)?;
    }
    c.wait_leader(std::time::Duration::from_secs(20)).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let held: Value = loop {
        let r = hold().await?;
        if r.status() == 201 {
            break r.json().await?;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no hold after the cluster healed: {}",
            r.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let map: Value = api.http.get(api.url(dt_path)).send().await?.json().await?;
    let held_seats: u64 = map["seat_map"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["held"].as_u64().unwrap())
        .sum();
    assert_eq!(held_seats, 1, "one hold, applied once: {held}");
    Ok(())
}
