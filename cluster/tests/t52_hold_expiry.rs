//! A purchase after the hold expired is a nack, and the authorized payment is voided. Holds lapse
//! in log time, which the leader stamps; the test moves a node's clock 11 minutes ahead (fault
//! injection through `TICKETD_FAULT_CLOCK_OFFSET_MS`) and makes it the leader, as a host whose
//! clock jumps would.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use ticketd_http::auth::Role;
use ticketd_testkit::cluster::Launch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_after_the_hold_expired_is_a_nack() -> anyhow::Result<()> {
    let mut stack = seeded_stack(&[]).await?;
    let (c, api) = (&mut stack.c, &stack.api);
    let user = token("demo-user-3", Role::User);
    let dt_path = "/v1/events/nordic-jazz/dts/nordic-jazz-d0";

    phase("hold two seats");
    let r = api
        .http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(&user)
        .header("idempotency-key", "hold-1")
        .json(&json!({"seats": [10, 11]}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let held: Value = r.json().await?;
    let hold_id = held["hold_id"].as_str().unwrap().to_string();
    let total = held["total_minor"].as_i64().unwrap();
    assert_eq!(held["status"], "live", "{held}");

    phase("a follower restarts with its clock 11 minutes ahead and becomes the leader");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let skewed = c.running().into_iter().find(|id| *id != leader).unwrap();
    c.kill(skewed)?;
    c.set_launch(
        skewed,
        Launch {
            env: vec![(
                "TICKETD_FAULT_CLOCK_OFFSET_MS".into(),
                (11 * 60 * 1000).to_string(),
            )],
            ..Launch::default()
        },
    );
    c.respawn(skewed)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, _, err) = ctl(c, &["leader", "transfer", &skewed.to_string()]);
        if code == 0 && c.current_leader().await == Some(skewed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "could not move leadership to {skewed}: {err}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    phase("the purchase is a nack: the hold lapsed in log time; nothing is sold");
    let r = api
        .http
        .post(api.url(dt_path))
        .bearer_auth(&user)
        .header("idempotency-key", "buy-1")
        .json(&json!({"hold_id": hold_id, "expected_total_minor": total, "payment_method_token": "pm_card_visa"}))
        .send()
        .await?;
    let status = r.status().as_u16();
    let p: Value = r.json().await?;
    assert_eq!(status, 410, "{p}");
    assert!(
        matches!(
            p["code"].as_str(),
            Some("HOLD_EXPIRED") | Some("HOLD_NOT_LIVE")
        ),
        "{p}"
    );
    let mine: Value = api
        .http
        .get(api.url("/v1/me/orders"))
        .bearer_auth(&user)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(mine["orders"].as_array().map(Vec::len), Some(0), "{mine}");
    let h: Value = api
        .http
        .get(api.url(&format!("{dt_path}/holds/{hold_id}")))
        .bearer_auth(&user)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(h["status"], "expired", "the hold expired: {h}");
    assert!(h["order_id"].is_null(), "{h}");

    phase("the seats are free again: another user holds them");
    let r = api
        .http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(token("demo-user-2", Role::User))
        .header("idempotency-key", "hold-2")
        .json(&json!({"seats": [10, 11]}))
        .send()
        .await?;
    assert_eq!(r.status(), 201, "{}", r.text().await?);
    Ok(())
}

/// The state of seat `i` (`f` free, `h` held, `s` sold, `x` not for sale) in a seat-map
/// answer; `?` when the answer has no such seat.
fn seat_state(map: &Value, i: usize) -> char {
    map["seat_map"]["seat_states"]
        .as_str()
        .and_then(|s| s.chars().nth(i))
        .unwrap_or('?')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shortened_hold_ttl_gives_the_seats_back_on_an_idle_cluster() -> anyhow::Result<()> {
    let stack = seeded_stack(&["--hold-ttl-s", "5"]).await?;
    let api = &stack.api;
    let dt_path = "/v1/events/nordic-jazz/dts/nordic-jazz-d0";
    let map = || async {
        let r = api.http.get(api.url(dt_path)).send().await?;
        anyhow::Ok(r.json::<Value>().await?)
    };

    phase("a hold through an API whose holds last 5 s");
    let r = api
        .http
        .post(api.url(&format!("{dt_path}/holds")))
        .bearer_auth(token("demo-user-3", Role::User))
        .header("idempotency-key", "short-1")
        .json(&json!({"seats": [20, 21]}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let placed = Instant::now();
    let held: Value = r.json().await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let expires = unix_ms(&held["expires_at"]).expect("expires_at is an RFC 3339 time");
    assert!(
        (now_ms + 3_000..=now_ms + 5_500).contains(&expires),
        "expires {} ms from now, not about 5 s: {held}",
        expires - now_ms
    );

    phase("held until the TTL; free again within 2 s after it, with no other write");
    // The seat map is cached for up to a second: first the hold shows, then its expiry.
    let deadline = placed + Duration::from_secs(15);
    let mut seen_held = false;
    let freed_after = loop {
        let m = map().await?;
        match (seat_state(&m, 20), seat_state(&m, 21)) {
            ('h', 'h') => seen_held = true,
            ('f', 'f') if seen_held => break placed.elapsed(),
            ('f', 'f') => {}
            other => panic!("seats 20, 21 in states {other:?}: {m}"),
        }
        assert!(Instant::now() < deadline, "the seats never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        freed_after >= Duration::from_millis(4_500),
        "seats free after {freed_after:?}, before the hold's 5 s"
    );
    assert!(
        freed_after <= Duration::from_secs(7),
        "seats free only after {freed_after:?}: more than the TTL + 2 s"
    );

    phase("an out-of-range TTL is refused when the API starts");
    let out = std::process::Command::new(ticketd_bin())
        .args(["api", "--hold-ttl-s", "2", "--endpoints", "127.0.0.1:1"])
        .output()?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hold-ttl-s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Runs `ticketctl` against `c` as its operator: exit code, stdout, stderr.
fn ctl(c: &ticketd_testkit::cluster::TestCluster, args: &[&str]) -> (i32, String, String) {
    operator_ctl(c, &c.endpoints(), (2000, 4000), args)
}
